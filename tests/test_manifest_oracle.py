"""The static pod manifest reader against the kubelet's own YAML path, in Go (tests/oracle/manifest_oracle.go).

The kubelet reads a static pod file with sigs.k8s.io/yaml's YAMLToJSON (go-yaml v2, keys made strings, JSON) and
decodes a v1 Pod from the JSON; a file that starts with `{` is decoded as JSON directly. The check reads it with
pyyaml on libyaml. For a corpus of manifests (the real kubeadm one, those tests/test_distributions.py builds, and
about two thousand seeded variants in every YAML style the kubelet takes: block and flow, quoting and escapes, comments,
CRLF, a BOM, document markers, anchors, aliases and merge keys, tabs after colons, repeated keys, several containers,
`args` only, wrappers, long lines, non-ASCII, JSON), and 600 more in kubeadm's block style, each document goes
through Go once and through the check once:

- where the kubelet decodes the Pod, the check's `manifest_setting` must be what the check's own helpers (container
  choice, `apiserver_arguments`, `effective_flags`) make of the containers Go decoded;
- where the kubelet refuses the file (it never runs it), the check must not read a setting from it: not comparable.

The only exceptions are named (CONSERVATIVE): files the kubelet decodes but the check declines to read (not
comparable, never a different value). .ci/run installs Go and go-yaml v2 from Debian (golang-go,
golang-gopkg-yaml.v2-dev); elsewhere this skips with the reason.
"""

from __future__ import annotations

import base64
import collections
import json
import random
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datadog_checks.base import AgentCheck
from datadog_checks.cis_kubernetes.control import CONTROL
from datadog_checks.cis_kubernetes.distributions.manifests import (
    ManifestSetting,
    apiserver_arguments,
    manifest_setting,
)
from datadog_checks.cis_kubernetes.flags import effective_flags
from devtools import certs
from tests.conftest import build_go_oracle, needs_standins, write
from tests.test_distributions import CA_FLAG, COMMON, MANIFEST, SC, manifest, wrapped_manifest

ORACLE_SOURCE = Path(__file__).resolve().parent / 'oracle' / 'manifest_oracle.go'
KUBEADM_MANIFEST = (Path(__file__).parent / 'data' / 'manifests' / 'kubeadm-kube-apiserver.yaml').read_text()
NOT_COMPARABLE = ManifestSetting(None, comparable=False)
GENERATED = 2000
PLAIN_BLOCK_GENERATED = 600  # in kubeadm's block style, the commonest manifest

# Files the kubelet decodes that the check declines to read (not comparable): never a different reading.
CONSERVATIVE = {
    'unknown_tag': 'go-yaml v2 reads `!custom value` as the string; pyyaml safe loading refuses the tag',
    'null_in_command': 'a null among the strings decodes to "" in Go; the check does not guess it',
    'null_container': 'a null container decodes to one without a name (which the kubelet validation then refuses)',
    'surrogate_escape': 'JSON `\\ud83d\\ude00` is one character to Go; libyaml refuses an escaped surrogate',
    'pyyaml_only_non_string': 'YAML 1.1 sexagesimals and timestamps: strings to go-yaml v2, not to pyyaml',
    'json_repeated_key': 'Go decodes a repeated JSON object into the same struct again; Python keeps the last',
    'inner_bom': 'a byte order mark after the first line: go-yaml v2 skips it, libyaml refuses it',
}


@dataclass
class Document:
    text: str
    hazards: set[str] = field(default_factory=set)
    origin: str = 'generated'


class Oracle:
    def __init__(self, binary: str):
        self.binary = binary

    def read(self, texts: list[str | bytes]) -> list[dict]:
        """What the kubelet makes of each file: `texts` as they are written (str, in UTF-8) or their bytes."""
        raw = [t if isinstance(t, bytes) else t.encode('utf-8') for t in texts]
        lines = ''.join(json.dumps(base64.b64encode(r).decode()) + '\n' for r in raw)
        output = subprocess.run([self.binary], input=lines, capture_output=True, text=True, check=True)
        answers = [json.loads(line) for line in output.stdout.splitlines()]
        assert len(answers) == len(texts)
        return answers


@pytest.fixture(scope='module')
def oracle(tmp_path_factory):
    return Oracle(build_go_oracle(tmp_path_factory, ORACLE_SOURCE, 'gopkg.in/yaml.v2', 'golang-gopkg-yaml.v2-dev'))


def chosen(containers: list[dict]) -> dict:
    return next((c for c in containers if c['name'] == 'kube-apiserver'), containers[0] if containers else {})


def reading_of(containers: list[dict]) -> ManifestSetting:
    """What the check's own helpers make of the containers as the kubelet decoded them and expanded their $(VAR)."""
    arguments = apiserver_arguments(chosen(containers).get('expanded') or [])
    if arguments is None:
        return NOT_COMPARABLE
    return ManifestSetting(effective_flags(arguments).get(CONTROL.flag))


# -- writing YAML in many styles -------------------------------------------------------------------------------------


class Raw(str):
    """Text written as it is: a plain scalar YAML 1.1 may resolve to something other than a string."""


@dataclass
class Alias:
    name: str


@dataclass
class Anchored:
    name: str
    value: object


@dataclass
class Tagged:
    tag: str
    value: str


class Pairs(list):
    """A mapping as (key, value) pairs, so that a key may repeat and merge keys (`<<`) keep their place."""


PLAIN_FIRST = set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ/_')
GO_YAML_NUMBERISH = set('0123456789+.')


def plain_allowed(text: str, flow: bool) -> bool:
    if not text or text != text.strip() or any(c in text for c in '\n\r\t#\'"`') or ': ' in text or text[-1] == ':':
        return False
    if flow and any(c in text for c in ',[]{}:'):
        return False
    if not (text[0] in PLAIN_FIRST or (text[0] == '-' and len(text) > 1 and text[1] not in ' -') or text[:2] == '--'):
        return False
    if text in ('y', 'Y', 'n', 'N') or text[0] in GO_YAML_NUMBERISH:
        return False
    try:
        return yaml.load(text, Loader=yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader) == text
    except yaml.YAMLError:
        return False


def double_quoted(text: str, rng: random.Random) -> str:
    out = []
    for character in text:
        code = ord(character)
        if character in '"\\':
            out.append('\\' + character)
        elif character == '\t':
            out.append('\\t')
        elif code > 0x7E and rng.random() < 0.6:
            out.append(f'\\x{code:02x}' if code < 0x100 else f'\\u{code:04x}' if code < 0x10000 else f'\\U{code:08x}')
        elif character == ' ' and rng.random() < 0.1:
            out.append('\\x20')
        else:
            out.append(character)
    return '"' + ''.join(out) + '"'


class Writer:
    def __init__(self, rng: random.Random, plain_block: bool = False):
        self.rng = rng
        # kubeadm's block style (its manifest: tests/data/manifests/kubeadm-kube-apiserver.yaml): keys unquoted,
        # scalars on one line, printable ASCII; quoting, comments and indentation still vary as in other documents.
        self.plain_block = plain_block

    def scalar(self, value, flow: bool, indent: int) -> str:
        rng = self.rng
        if isinstance(value, Raw):
            return str(value)
        if isinstance(value, Alias):
            return f'*{value.name}'
        if isinstance(value, Tagged):
            return f'{value.tag} {self.scalar(value.value, flow, indent)}'
        if value is None:
            return rng.choice(['~', 'null', ''])
        text = str(value)
        roll = rng.random()
        if plain_allowed(text, flow) and roll < 0.55:
            return text
        if roll < 0.75 and '\n' not in text:
            return "'" + text.replace("'", "''") + "'"
        block = not flow and not self.plain_block and text and text[0] not in ' \t' and text[-1] not in ' \t'
        if block and roll < 0.85 and '\n' not in text:
            style = rng.choice(['|-', '>-'])
            if style == '>-' and '  ' in text:
                style = '|-'
            return f'{style}\n' + ' ' * (indent + 2) + text
        return double_quoted(text, rng)

    def flow(self, value) -> str:
        if isinstance(value, Anchored):
            return f'&{value.name} {self.flow(value.value)}'
        if isinstance(value, Pairs):
            sep = self.rng.choice([', ', ',', ',\n  '])
            return '{' + sep.join(f'{self.key(k, True)}: {self.flow(v)}' for k, v in value) + '}'
        if isinstance(value, list):
            sep = self.rng.choice([', ', ',', ',\n  '])
            return '[' + sep.join(self.flow(v) for v in value) + ']'
        return self.scalar(value, True, 0)

    def key(self, key, flow: bool) -> str:
        if isinstance(key, Raw):
            return str(key)
        if self.rng.random() < 0.1 and not self.plain_block:
            return f'"{key}"'
        return key

    def colon(self) -> str:
        return self.rng.choice([': '] * 8 + ([] if self.plain_block else [':\t']) + [':  '])

    def comment(self) -> str:
        comments = ['', '', '', '  # a comment', ' #: not a key']
        return self.rng.choice(comments + ([] if self.plain_block else ['  # çà ✓']))

    def block(self, value, indent: int) -> str:
        """`value` as the text after `key:` or `- ` (starting with a space or a newline)."""
        rng = self.rng
        anchor = ''
        if isinstance(value, Anchored):
            anchor, value = f' &{value.name}', value.value
        if isinstance(value, (Pairs, list)) and (not value or (rng.random() < 0.15 and not self.plain_block)):
            return f'{anchor} {self.flow(value)}{self.comment()}\n'
        if isinstance(value, Pairs):
            return f'{anchor}\n' + self.mapping(value, indent + 2)
        if isinstance(value, list):
            inner = indent + rng.choice([0, 2])
            return f'{anchor}\n' + self.sequence(value, inner)
        return f'{anchor} {self.scalar(value, False, indent)}{self.comment()}\n'

    def mapping(self, pairs: Pairs, indent: int) -> str:
        out = []
        for key, value in pairs:
            if self.rng.random() < 0.05:
                out.append(' ' * indent + '# a full-line comment\n')
            head = ' ' * indent + self.key(key, False) + self.colon().rstrip(' ')
            out.append(head + self.block(value, indent))
        return ''.join(out)

    def sequence(self, items: list, indent: int) -> str:
        out = []
        for item in items:
            if isinstance(item, Pairs) and item and self.rng.random() < 0.8:
                body = self.mapping(item, indent + 2)
                out.append(' ' * indent + '- ' + body[indent + 2 :])
            else:
                out.append(' ' * indent + '-' + self.block(item, indent))
        return ''.join(out)


# -- the corpus ------------------------------------------------------------------------------------------------------

CA_PATHS = [
    '/etc/kubernetes/pki/ca.crt',
    '',
    '/pki/çà/ca.crt',
    '/pki/中文.crt',
    '/pki/\U0001f600.crt',
    '/pki/a b.crt',
    "/pki/it's.crt",
    '/pki/"q".crt',
    '/pki/#hash.crt',
    '/pki/a: b.crt',
    '/pki/a\tb.crt',
    '/pki/' + 'long-' * 700 + 'ca.crt',
]
ASCII_CA_PATHS = [path for path in CA_PATHS if path.isascii() and path.isprintable()]
OTHER_FLAGS = [
    '--tls-cert-file=/etc/kubernetes/pki/apiserver.crt',
    '--profiling=false',
    '--v=2',
    '--enable-admission-plugins=NodeRestriction',
    '--etcd-servers=' + ','.join(f'https://10.0.0.{i}:2379' for i in range(1, 200)),
]
# Plain scalars that YAML 1.1 resolves to something else than a string, in pyyaml and in go-yaml v2 alike.
BOTH_NON_STRINGS = ['yes', 'on', 'off', 'true', 'NO', '123', '0755', '0x1F', '1_000', '.5', '-1', '1.5']
# Plain scalars pyyaml reads as strings but go-yaml v2 resolves to a boolean or number (its resolve.go).
GO_ONLY_NON_STRINGS = ['y', 'Y', 'n', 'N', '1e3', '08', '0o17', '+1e-2', '1.0e3']
PYYAML_ONLY_NON_STRINGS = ['1:20', '190:20:30.15', '2001-01-01', '2002-12-14t21:59:43.10-05:00']


def client_ca_tokens(rng: random.Random, paths: list[str] = CA_PATHS) -> list[str]:
    path = rng.choice(paths)
    name = rng.choice(['client-ca-file'] * 4 + ['client_ca_file'])
    return [f'--{name}={path}'] if rng.random() < 0.7 else [f'--{name}', path]


def apiserver_argv(rng: random.Random, paths: list[str] = CA_PATHS) -> tuple[list[str], list[str]]:
    """(command, args) of an apiserver container."""
    flags = list(COMMON[: rng.randint(0, 3)])
    for _ in range(rng.randint(0, 3)):
        flags.insert(rng.randint(0, len(flags)), rng.choice(OTHER_FLAGS))
    for _ in range(rng.choice([0, 1, 1, 1, 2])):
        flags[rng.randint(0, len(flags)) : 0] = client_ca_tokens(rng, paths)
    if rng.random() < 0.05:
        flags.append('--')
    kind = rng.randint(0, 9)
    if kind <= 3:
        program = [rng.choice(['kube-apiserver', '/usr/local/bin/kube-apiserver'])]
    elif kind == 4:
        program = []  # only args: the image's entrypoint is the apiserver
    elif kind == 5:
        program = ['/go-runner', '--log-file=/var/log/kube-apiserver.log', '--also-stdout', 'kube-apiserver']
    elif kind == 6:
        program = ['/hyperkube', rng.choice(['apiserver', 'kube-apiserver'])]
    elif kind == 7:
        script = 'exec kube-apiserver ' + ' '.join(shlex.quote(f) for f in flags)
        return ['/bin/sh', '-c', script], []
    elif kind == 8:
        program = ['/usr/local/bin/entrypoint']  # a wrapper the check does not read
    else:
        program = ['kube-apiserver']
    cut = rng.randint(0, len(flags)) if program else 0
    if rng.random() < 0.5:
        return program + flags, []
    return program + flags[:cut], flags[cut:]


def container(rng: random.Random, name: str, command: list, args: list) -> Pairs:
    pairs = Pairs([('name', name), ('image', 'registry.k8s.io/kube-apiserver:v1.31.0')])
    if command or rng.random() < 0.1:
        pairs.append(('command', command))
    if args or rng.random() < 0.1:
        pairs.append(('args', args))
    if rng.random() < 0.2:
        pairs.append(('imagePullPolicy', 'IfNotPresent'))
    if rng.random() < 0.1:
        pairs.append(('Command', ['/not/read', CA_FLAG]))  # the Pod decoder's keys are case-sensitive
    rng.shuffle(pairs)
    return pairs


def generated(rng: random.Random, plain_block: bool = False) -> Document:
    """A manifest with one hazard at most; `plain_block`: in kubeadm's block style (Writer)."""
    hazards: set[str] = set()
    paths = ASCII_CA_PATHS if plain_block else CA_PATHS
    command, args = apiserver_argv(rng, paths)
    containers = []
    apiserver_name = rng.choice(['kube-apiserver'] * 8 + ['apiserver', 'kube-apiserver-healthcheck'])
    containers.append(container(rng, apiserver_name, command, args))
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        other_command, other_args = apiserver_argv(rng, paths)
        other = rng.choice(['healthcheck', 'kube-apiserver', 'sidecar'])
        containers.insert(rng.randint(0, len(containers)), container(rng, other, other_command, other_args))
    spec = Pairs([('containers', containers), ('hostNetwork', Raw('true'))])
    metadata = Pairs([('name', 'kube-apiserver'), ('namespace', 'kube-system')])
    top = Pairs([('apiVersion', 'v1'), ('kind', 'Pod'), ('metadata', metadata), ('spec', spec)])
    rng.shuffle(top)
    target = rng.choice(containers)
    roll = rng.random()
    # Hazards: one at most per document, so that each disagreement has one cause.
    if roll < 0.05:
        hazards.add('both_non_string')
        _insert_token(rng, target, Raw(rng.choice(BOTH_NON_STRINGS)))
    elif roll < 0.10:
        hazards.add('go_only_non_string')
        _insert_token(rng, target, Raw(rng.choice(GO_ONLY_NON_STRINGS)))
    elif roll < 0.12:
        hazards.add('pyyaml_only_non_string')
        _insert_token(rng, target, Raw(rng.choice(PYYAML_ONLY_NON_STRINGS)))
    elif roll < 0.14:
        hazards.add('null_in_command')
        _insert_token(rng, target, Raw(rng.choice(['~', 'null'])))
    elif roll < 0.16:
        hazards.add('quoted_non_strings')  # quoted, they are strings to both
        _insert_token(rng, target, Raw(rng.choice(["'y'", '"123"', "'on'", '!!str 1e3', '"~"'])))
    elif roll < 0.18:
        hazards.add('scalar_command')
        _replace(target, 'command', rng.choice(['kube-apiserver', '/usr/local/bin/kube-apiserver']))
    elif roll < 0.20:
        hazards.add('null_key')
        metadata.append((Raw(rng.choice(['~', 'null', 'Null'])), 'x'))
    elif roll < 0.22:
        hazards.add('unknown_tag')
        _insert_token(rng, target, Tagged('!custom', '--v=3'))
    elif roll < 0.24:
        hazards.add('null_container')
        containers.insert(rng.randint(0, len(containers)), None)
    elif roll < 0.26:
        hazards.add('number_name')
        _replace(target, 'name', Raw(rng.choice(['123', 'yes', '1.5'])))
    elif roll < 0.30:
        hazards.add('repeated_key')  # go-yaml v2 Unmarshal (not strict) and pyyaml: the last one wins
        target.insert(rng.randint(0, len(target)), ('command', ['kube-apiserver', '--client-ca-file=/repeated.crt']))
    elif roll < 0.34:
        hazards.add('anchors')
        _alias_tokens(rng, top, target)
    elif roll < 0.40:
        hazards.add('merge_key')
        _merge(rng, top, target, override=False)
    elif roll < 0.44:
        hazards.add('merge_override')
        _merge(rng, top, target, override=True)
    text = Writer(rng, plain_block).mapping(top, 0)
    return Document(_framed(rng, text, hazards, plain_block), hazards)


def _insert_token(rng: random.Random, pairs: Pairs, token) -> None:
    for key, value in pairs:
        if key in ('command', 'args') and isinstance(value, list) and value:
            value.insert(rng.randint(1, len(value)), token)
            return
    pairs.append(('args', ['--v=1', token]))


def _replace(pairs: Pairs, key: str, value) -> None:
    for i, (k, _) in enumerate(pairs):
        if k == key:
            pairs[i] = (key, value)
            return
    pairs.append((key, value))


def _alias_tokens(rng: random.Random, top: Pairs, target: Pairs) -> None:
    """An anchored list of flags at an unknown top-level key, aliased as the container's args; a scalar anchor."""
    flags = ['--v=2', *client_ca_tokens(rng)]
    top.insert(0, ('x-flags', Anchored('flags', flags)))
    _replace(target, 'args', Alias('flags'))
    for key, value in target:
        if key == 'command' and isinstance(value, list) and value:
            value[0] = Anchored('program', value[0]) if isinstance(value[0], str) else value[0]


def _merge(rng: random.Random, top: Pairs, target: Pairs, override: bool) -> None:
    """`<<: *base` in the container. With `override`, a key the base also sets comes before the merge key."""
    base = Pairs([('image', 'registry.k8s.io/base'), ('command', ['kube-apiserver', *client_ca_tokens(rng)])])
    top.insert(0, ('x-base', Anchored('base', base)))
    merge = (Raw('<<'), Alias('base'))
    keys = [k for k, _ in target]
    if override:
        if 'command' not in keys:
            target.append(('command', ['kube-apiserver', '--client-ca-file=/explicit.crt']))
        position = max(i for i, (k, _) in enumerate(target) if k == 'command') + 1
        target.insert(rng.randint(position, len(target)), merge)
    else:
        target.insert(0, merge)


def _framed(rng: random.Random, text: str, hazards: set[str], plain_block: bool = False) -> str:
    roll = rng.random()
    if roll < 0.1:
        text = '---\n' + text
    elif roll < 0.15:
        text = '--- # a pod\n' + text + '...\n'
    elif roll < 0.18:
        text = '%YAML 1.1\n---\n' + text
    elif roll < 0.21:
        text = text + '---\nkind: Other\n'
        hazards.add('multi_document')
    if rng.random() < 0.05:
        text = '# kube-apiserver static pod\n\n' + text
    if rng.random() < 0.1 and not plain_block:
        if text.startswith('#') and rng.random() < 0.5:
            text = text.replace('\n\n', '\n\n\ufeff', 1)
            hazards.add('inner_bom')
        else:
            text = '\ufeff' + text
    if rng.random() < 0.15 and not plain_block:
        text = text.replace('\n', '\r\n')
    return text


def as_pairs(value):
    if isinstance(value, dict):
        return Pairs((key, as_pairs(item)) for key, item in value.items())
    if isinstance(value, list):
        return [as_pairs(item) for item in value]
    return value


def json_documents(rng: random.Random, count: int) -> list[Document]:
    documents = []
    for _ in range(count):
        command, args = apiserver_argv(rng)
        pod = {
            'apiVersion': 'v1',
            'kind': 'Pod',
            'metadata': {'name': 'kube-apiserver'},
            'spec': {'containers': [{'name': 'kube-apiserver', 'command': command, 'args': args}]},
        }
        text = json.dumps(pod, indent=rng.choice([None, 2]), ensure_ascii=rng.random() < 0.5)
        hazards = set()
        if rng.random() < 0.1 and not any(ord(c) > 0xFFFF for c in text):
            hazards.add('json_repeated_key')  # Go decodes the second spec into the same struct: it keeps the first's
            text = text[:-1] + ', "spec": {"containers": [{"name": "kube-apiserver", "args": ["--v=4"]}]}}'
        elif '\\ud83d' in text:
            hazards.add('surrogate_escape')
        documents.append(Document(rng.choice(['', ' ', '\n', '\t']) + text, hazards, 'json'))
        if rng.random() < 0.3:  # YAML flow style at the top: JSON to the kubelet's sniffing, but not JSON
            flow = Writer(rng).flow(as_pairs(pod))
            documents.append(Document(flow + '\n', {'flow_not_json'}, 'flow'))
            documents.append(Document('--- ' + flow + '\n', set(), 'flow'))  # not at the start: YAML
    return documents


def fixed_documents() -> list[Document]:
    """The real kubeadm manifest, what tests/test_distributions.py writes, and a few shapes named one by one."""
    documents = [Document(KUBEADM_MANIFEST, origin='kubeadm')]
    documents.append(Document(KUBEADM_MANIFEST.replace('\n', '\r\n'), origin='kubeadm'))
    documents.append(Document('\ufeff' + KUBEADM_MANIFEST, origin='kubeadm'))
    for flags in ([], [CA_FLAG], ['--client-ca-file='], ['--client-ca-file=/etc/kubernetes/pki/new-ca.crt']):
        documents.append(Document(manifest(*flags).decode(), origin='test_distributions'))
    for command in (
        ['sh', '-c', f'exec kube-apiserver {CA_FLAG} --v=2'],
        ['/go-runner', '--log-file=/var/log/kube-apiserver.log', '/usr/local/bin/kube-apiserver', CA_FLAG],
        ['sh', '-c', 'exec kube-apiserver --client-ca-file=$CLIENT_CA'],
    ):
        documents.append(Document(wrapped_manifest(command).decode(), origin='test_distributions'))
    pod = 'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: kube-apiserver\n'
    for body, hazards in [
        ('    command: [kube-apiserver, --client-ca-file=/a.crt]\n', set()),
        ('    command:\tkube-apiserver\n', {'scalar_command'}),
        ('    command: [kube-apiserver]\n    args:\n    - --client-ca-file\n    - /a.crt\n', set()),
        ("    command: ['kube-apiserver', '--client-ca-file=/it''s.crt']\n", set()),
        ('    command: ["kube-apiserver", "--client-ca-file=\\/escaped\\tpath"]\n', set()),
        ('    command: [kube-apiserver, --client-ca-file=/a.crt]\n    command: [kube-apiserver]\n', {'repeated_key'}),
        ('    command: &c [kube-apiserver, --client-ca-file=/a.crt]\n    args: *c\n', {'anchors'}),
        ('    command: [kube-apiserver, y]\n', {'go_only_non_string'}),
    ]:
        documents.append(Document(pod + body, hazards, 'fixed'))
    documents.append(
        Document(pod + '    command: [kube-apiserver, --client-ca-file=/a.crt]\n---\n[', {'multi_document'})
    )
    documents.append(Document('', {'empty'}, 'fixed'))
    documents.append(Document('{"apiVersion": "v1", "kind": "Pod", "spec": {"containers": []}}', set(), 'fixed'))
    return documents


def corpus() -> list[Document]:
    rng = random.Random(20261130)
    documents = fixed_documents()
    documents += [generated(rng) for _ in range(GENERATED)]
    documents += json_documents(rng, 200)
    documents += [generated(rng, plain_block=True) for _ in range(PLAIN_BLOCK_GENERATED)]
    return documents


# -- the comparison --------------------------------------------------------------------------------------------------


def expansion_unknown(answer: dict) -> bool:
    """The kubelet expands a reference the check cannot (a variable not set by value in the manifest: it may be a
    service link), or a `$` before a non-ASCII character, whose bytes Go's expansion splits."""
    container = chosen(answer['containers'])
    words = (container.get('command') or []) + (container.get('args') or [])
    return container.get('unresolved', False) or any(re.search('\\$[^\\x00-\\x7f]', word) for word in words)


def compare(oracle: Oracle, documents: list[Document]):
    answers = oracle.read([d.text for d in documents])
    outcomes = collections.Counter()
    unexplained = []
    for document, answer in zip(documents, answers, strict=True):
        ours = manifest_setting(document.text)
        if answer['ok']:
            expected = reading_of(answer['containers'])
            if ours == expected:
                outcomes['agree', 'accepted', *sorted(document.hazards)] += 1
            elif ours == NOT_COMPARABLE and (document.hazards & CONSERVATIVE.keys() or expansion_unknown(answer)):
                outcomes['declined', 'accepted', *sorted(document.hazards)] += 1
            else:
                unexplained.append((document, 'kubelet decodes', expected, ours))
        elif ours.comparable:
            unexplained.append((document, f'kubelet refuses at {answer["stage"]}: {answer["error"]}', None, ours))
        else:
            outcomes['agree', 'refused', *sorted(document.hazards)] += 1
    return outcomes, unexplained


def test_the_check_reads_every_manifest_as_the_kubelet_decodes_it(oracle):
    documents = corpus()
    outcomes, unexplained = compare(oracle, documents)
    report = '\n'.join(
        f'{why}: expected {e}, check read {o}\n{d.hazards} {d.text[:600]!r}' for d, why, e, o in unexplained
    )
    assert not unexplained, f'{len(unexplained)} disagreements:\n{report[:8000]}'
    accepted = sum(n for key, n in outcomes.items() if key[1] == 'accepted')
    assert accepted > len(documents) * 0.6, outcomes  # the comparison is worth its cases only if most decode
    compared = sum(n for key, n in outcomes.items() if key[:2] == ('agree', 'accepted'))
    assert compared > len(documents) * 0.5, outcomes
    for hazard in HAZARDS:  # each shape the generator makes, often enough to matter
        assert sum(n for key, n in outcomes.items() if hazard in key[2:]) >= 15, (hazard, outcomes)


HAZARDS = [
    'both_non_string',
    'go_only_non_string',
    'pyyaml_only_non_string',
    'null_in_command',
    'quoted_non_strings',
    'scalar_command',
    'null_key',
    'unknown_tag',
    'null_container',
    'number_name',
    'repeated_key',
    'anchors',
    'merge_key',
    'merge_override',
    'multi_document',
    'flow_not_json',
    'json_repeated_key',
]


# -- each disagreement found, one example each -----------------------------------------------------------------------

POD = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver\nspec:\n  containers:\n  - name: kube-apiserver\n'
CA = '/etc/kubernetes/pki/ca.crt'
REFUSED = 'refused'
# (what, the manifest, what the check reads, what the kubelet decodes: REFUSED or the check's helpers' reading of it)
EXAMPLES = [
    # The kubelet refuses these files (it never runs them): the check used to read a setting from each.
    (
        'go-yaml v2 resolves a plain y or n to a boolean (pyyaml: a string)',
        POD + f'    command: [kube-apiserver, --client-ca-file={CA}, --anonymous-auth, n]\n',
        NOT_COMPARABLE,
        REFUSED,
    ),
    (
        'go-yaml v2 resolves 1e3, 08, 0o17 to numbers (pyyaml: strings)',
        POD + f'    command: [kube-apiserver, --client-ca-file={CA}, --v, 08]\n',
        NOT_COMPARABLE,
        REFUSED,
    ),
    (
        'a YAML 1.1 number among the strings (pyyaml made it "6443")',
        POD + f'    command: [kube-apiserver, --client-ca-file={CA}, --secure-port, 6443]\n',
        NOT_COMPARABLE,
        REFUSED,
    ),
    (
        'a command that is one string, not a list',
        POD + f'    command: kube-apiserver\n    args: [--client-ca-file={CA}]\n',
        NOT_COMPARABLE,
        REFUSED,
    ),
    (
        'a null key anywhere: YAMLToJSON makes no JSON key of it',
        POD.replace('  name: kube-apiserver\n', '  name: kube-apiserver\n  labels: {~: x}\n', 1)
        + f'    command: [kube-apiserver, --client-ca-file={CA}]\n',
        NOT_COMPARABLE,
        REFUSED,
    ),
    (
        'flow YAML starting with {: the kubelet decodes it as JSON, which it is not',
        '{apiVersion: v1, kind: Pod, spec: {containers: [{name: kube-apiserver, command: [kube-apiserver, '
        f'--client-ca-file={CA}]}}]}}}}\n',
        NOT_COMPARABLE,
        REFUSED,
    ),
    (
        'a \\/ escape: libyaml reads a slash, go-yaml v2 knows no such escape',
        POD + '    command: ["kube-apiserver", "--client-ca-file=\\/etc/kubernetes/pki/ca.crt"]\n',
        NOT_COMPARABLE,
        REFUSED,
    ),
    (
        'not a v1 Pod',
        POD.replace('kind: Pod', 'kind: Deployment') + f'    command: [kube-apiserver, --client-ca-file={CA}]\n',
        NOT_COMPARABLE,
        REFUSED,
    ),
    (
        'a container name that is no string',
        POD.replace('  - name: kube-apiserver', '  - name: 123')
        + f'    command: [kube-apiserver, --client-ca-file={CA}]\\n',
        NOT_COMPARABLE,
        REFUSED,
    ),
    # The kubelet runs these: the check now reads what it runs.
    (
        'go-yaml v2 lets a merge key override the keys before it (pyyaml: explicit keys win)',
        'x-base: &base {command: [kube-apiserver, --client-ca-file=]}\n'
        + POD
        + f'    command: [kube-apiserver, --client-ca-file={CA}]\n    <<: *base\n',
        ManifestSetting(''),
        ManifestSetting(''),
    ),
    (
        'JSON after a tab: libyaml refuses the tab, the kubelet reads JSON',
        '\t{"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "kube-apiserver", '
        f'"command": ["kube-apiserver", "--client-ca-file={CA}"]}}]}}}}',
        ManifestSetting(CA),
        ManifestSetting(CA),
    ),
    (
        'a repeated key: the last one wins in go-yaml v2 Unmarshal (not strict) as in pyyaml',
        POD
        + f'    command: [kube-apiserver, --client-ca-file=]\n    command: [kube-apiserver, --client-ca-file={CA}]\n',
        ManifestSetting(CA),
        ManifestSetting(CA),
    ),
    (
        'quoted, y and 6443 are strings to both',
        POD + f'    command: [kube-apiserver, --client-ca-file={CA}, --anonymous-auth, "n", --secure-port, \'6443\']\n',
        ManifestSetting(CA),
        ManifestSetting(CA),
    ),
    (
        'two documents: go-yaml v2 reads the first, and so does the check',
        POD + f'    command: [kube-apiserver, --client-ca-file={CA}]\n---\nkind: Other\n',
        ManifestSetting(CA),
        ManifestSetting(CA),
    ),
    # The kubelet runs these; the check declines to read them (CONSERVATIVE): not comparable, never another value.
    (
        'an unknown tag: a string to go-yaml v2',
        POD + f'    command: [kube-apiserver, !custom --client-ca-file={CA}]\n',
        NOT_COMPARABLE,
        ManifestSetting(CA),
    ),
    (
        'a null among the strings: "" to the kubelet',
        POD + f'    command: [kube-apiserver, --client-ca-file={CA}, ~]\n',
        NOT_COMPARABLE,
        ManifestSetting(CA),
    ),
    (
        'a YAML 1.1 sexagesimal: a string to go-yaml v2, 80 to pyyaml',
        POD + f'    command: [kube-apiserver, --client-ca-file={CA}, --v, 1:20]\n',
        NOT_COMPARABLE,
        ManifestSetting(CA),
    ),
    (
        'a repeated JSON key: Go decodes the second spec into the first, keeping its command',
        '{"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "kube-apiserver", "command": '
        f'["kube-apiserver", "--client-ca-file={CA}"]}}]}}, "spec": {{"containers": [{{"name": "kube-apiserver"}}]}}}}',
        NOT_COMPARABLE,
        ManifestSetting(CA),
    ),
]


@pytest.mark.parametrize(('what', 'text', 'check', 'kubelet'), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_each_disagreement_found_is_read_safely(what, text, check, kubelet):
    """Without Go: what the check makes of one example of each disagreement the oracle found."""
    assert manifest_setting(text) == check


def test_each_example_is_what_the_kubelet_decodes(oracle):
    (*answers,) = oracle.read([text for _, text, _, _ in EXAMPLES])
    for (what, _, check, kubelet), answer in zip(EXAMPLES, answers, strict=True):
        decoded = reading_of(answer['containers']) if answer['ok'] else REFUSED
        assert decoded == kubelet, (what, answer)
        assert check in (kubelet, NOT_COMPARABLE), what  # the check never reads another value


# -- hypothesis: any text in the apiserver's argv, written in any style, shrunk to the smallest disagreement ----------

WORDS = st.one_of(
    st.sampled_from([*GO_ONLY_NON_STRINGS, *BOTH_NON_STRINGS, *PYYAML_ONLY_NON_STRINGS, '~', '<<', '-', '--', '#']),
    st.sampled_from(['--client-ca-file=', '--client-ca-file', CA, f'--client-ca-file={CA}', '--v=2', 'kube-apiserver']),
    st.text(min_size=0, max_size=12),
)


@settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    command=st.lists(WORDS, max_size=6),
    args=st.lists(WORDS, max_size=4),
    raw=st.sets(st.integers(0, 9), max_size=2),
    rnd=st.randoms(use_true_random=False),
)
def test_any_argv_in_any_style_reads_as_the_kubelet_decodes_it(oracle, command, args, raw, rnd):
    """Words written plain where the writer allows it, or raw (as they are, whatever YAML makes of them)."""
    command = ['kube-apiserver', *command]
    command = [Raw(w) if i in raw and w and w.isprintable() and w.strip() == w else w for i, w in enumerate(command)]
    pod = Pairs([('apiVersion', 'v1'), ('kind', 'Pod'), ('spec', Pairs([('containers', [])]))])
    pod[2][1][0][1].append(Pairs([('name', 'kube-apiserver'), ('command', command), ('args', args)]))
    text = Writer(rnd).mapping(pod, 0)
    (answer,) = oracle.read([text])
    ours = manifest_setting(text)
    if answer['ok']:
        assert ours in (reading_of(answer['containers']), NOT_COMPARABLE), (text, answer)
    else:
        assert not ours.comparable, (text, answer)


@pytest.mark.parametrize(
    ('token', 'status'),
    [
        ('--audit-log-path, "n"', AgentCheck.OK),
        ('--audit-log-path, n', AgentCheck.UNKNOWN),
        ('--secure-port, 6443', AgentCheck.UNKNOWN),
    ],
    ids=['quoted: the kubelet runs it', 'y or n: the kubelet refuses it', 'a number: the kubelet refuses it'],
)
def test_a_manifest_the_kubelet_refuses_is_not_judged_as_the_nodes_setting(
    token, status, make_check, dd_run_check, aggregator, workdir
):
    """No apiserver or kubelet visible: the manifest is the only evidence. One the kubelet never runs passes nothing."""
    host = f'{workdir}/host'
    write(f'{host}{CA}', certs.valid_ca())
    text = POD + f'    command: [kube-apiserver, --client-ca-file={CA}, {token}]\n'
    write(f'{host}{MANIFEST}', text.encode())
    dd_run_check(make_check({'host_root': host}))
    (sc,) = aggregator.service_checks(SC)
    assert sc.status == status, sc.message
    if status == AgentCheck.UNKNOWN:
        assert 'refuse to decode' in sc.message


# -- the file's bytes, and the words the kubelet runs ----------------------------------------------------------------

MANIFEST_TEXT = POD + f'    command: [kube-apiserver, --client-ca-file={CA}]\n'
WITH_ENV = POD + '    command: [kube-apiserver, "--client-ca-file=$(CA_FILE)"]\n    env:\n'
# (what, the file's bytes, what the check reads, what the kubelet decodes (REFUSED, or the check's helpers' reading of
# what it runs as the oracle expands it: a reference to a variable not set by value is left as written there))
BYTE_EXAMPLES = [
    ('a Latin-1 comment', MANIFEST_TEXT.encode() + b'# caf\xe9\n', NOT_COMPARABLE, REFUSED),
    (
        'a Latin-1 byte in the path',
        MANIFEST_TEXT.replace('ca.crt', 'c\xe9.crt').encode('latin-1'),
        NOT_COMPARABLE,
        REFUSED,
    ),
    ('an overlong sequence', MANIFEST_TEXT.encode() + b'# \xc0\xaf\n', NOT_COMPARABLE, REFUSED),
    ('an encoded surrogate', MANIFEST_TEXT.encode() + b'# \xed\xa0\x80\n', NOT_COMPARABLE, REFUSED),
    ('a sequence cut at the end', MANIFEST_TEXT.encode() + b'# \xe2\x82', NOT_COMPARABLE, REFUSED),
    ('a %YAML 1.2 directive', b'%YAML 1.2\n---\n' + MANIFEST_TEXT.encode(), NOT_COMPARABLE, REFUSED),
    ('a %YAML 1.1 directive', b'%YAML 1.1\n---\n' + MANIFEST_TEXT.encode(), ManifestSetting(CA), ManifestSetting(CA)),
    ('a trailing ---', MANIFEST_TEXT.encode() + b'---\n', ManifestSetting(CA), ManifestSetting(CA)),
    ('a second document', MANIFEST_TEXT.encode() + b'---\nkind: Other\n', ManifestSetting(CA), ManifestSetting(CA)),
    ('a second document that is no YAML', MANIFEST_TEXT.encode() + b'---\n[', ManifestSetting(CA), ManifestSetting(CA)),
    ('UTF-16LE with its BOM', MANIFEST_TEXT.encode('utf-16'), ManifestSetting(CA), ManifestSetting(CA)),
    (
        'UTF-16BE with its BOM',
        b'\xfe\xff' + MANIFEST_TEXT.encode('utf-16-be'),
        ManifestSetting(CA),
        ManifestSetting(CA),
    ),
    ('UTF-16 without a BOM', MANIFEST_TEXT.encode('utf-16-le'), NOT_COMPARABLE, REFUSED),
    ('a UTF-8 BOM', b'\xef\xbb\xbf' + MANIFEST_TEXT.encode(), ManifestSetting(CA), ManifestSetting(CA)),
    (
        'invalid UTF-8 in a JSON string (U+FFFD to Go)',
        b'{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "caf\xe9"}, "spec": {"containers": [{"name": '
        + f'"kube-apiserver", "command": ["kube-apiserver", "--client-ca-file={CA}"]}}]}}}}'.encode(),
        ManifestSetting(CA),
        ManifestSetting(CA),
    ),
    (
        '$(VAR) set in env',
        (WITH_ENV + f'    - name: CA_FILE\n      value: {CA}\n').encode(),
        ManifestSetting(CA),
        ManifestSetting(CA),
    ),
    (
        '$(VAR) set from an earlier variable',
        (
            WITH_ENV
            + '    - name: PKI\n      value: /etc/kubernetes/pki\n    - name: CA_FILE\n      value: $(PKI)/ca.crt\n'
        ).encode(),
        ManifestSetting(CA),
        ManifestSetting(CA),
    ),
    (
        '$(VAR) set from a field (valueFrom)',
        (WITH_ENV + '    - name: CA_FILE\n      valueFrom: {fieldRef: {fieldPath: metadata.name}}\n').encode(),
        NOT_COMPARABLE,
        ManifestSetting('$(CA_FILE)'),
    ),
    (
        '$(VAR) set nowhere in the manifest',
        (WITH_ENV + '    - name: OTHER\n      value: x\n').encode(),
        NOT_COMPARABLE,
        ManifestSetting('$(CA_FILE)'),
    ),
    (
        '$$ is one $',
        (POD + '    command: [kube-apiserver, "--client-ca-file=/etc/$$(x)/ca.crt"]\n').encode(),
        ManifestSetting('/etc/$(x)/ca.crt'),
        ManifestSetting('/etc/$(x)/ca.crt'),
    ),
    (
        '$ before anything else, and $( with no )',
        (POD + '    command: [kube-apiserver, "--client-ca-file=/etc/$x/$(y.crt"]\n').encode(),
        ManifestSetting('/etc/$x/$(y.crt'),
        ManifestSetting('/etc/$x/$(y.crt'),
    ),
]


@pytest.mark.parametrize(('what', 'data', 'check', 'kubelet'), BYTE_EXAMPLES, ids=[e[0] for e in BYTE_EXAMPLES])
def test_a_manifest_is_read_from_its_bytes_and_expanded_as_the_kubelet_does(what, data, check, kubelet):
    """Without Go: what the check makes of each file. Before, bytes were decoded with U+FFFD for what is not UTF-8,
    a second document or a trailing `---` made the file unreadable, and $(VAR) was read as written."""
    assert manifest_setting(data) == check


def test_each_byte_and_expansion_example_is_what_the_kubelet_decodes(oracle):
    answers = oracle.read([data for _, data, _, _ in BYTE_EXAMPLES])
    for (what, _, check, kubelet), answer in zip(BYTE_EXAMPLES, answers, strict=True):
        decoded = reading_of(answer['containers']) if answer['ok'] else REFUSED
        assert decoded == kubelet, (what, answer)
        assert check in (kubelet, NOT_COMPARABLE), what  # the check never reads another value
        assert check == kubelet or kubelet == REFUSED or expansion_unknown(answer), what  # declined only if unknown


@pytest.mark.parametrize(
    ('data', 'status'),
    [
        (MANIFEST_TEXT.encode(), AgentCheck.OK),
        (MANIFEST_TEXT.encode() + b'# caf\xe9\n', AgentCheck.UNKNOWN),
        (b'%YAML 1.2\n---\n' + MANIFEST_TEXT.encode(), AgentCheck.UNKNOWN),
        (MANIFEST_TEXT.replace(CA, '$(CA_FILE)').encode(), AgentCheck.UNKNOWN),
    ],
    ids=['UTF-8: the kubelet runs it', 'a Latin-1 comment: refused', 'YAML 1.2: refused', 'an unknown $(VAR)'],
)
def test_a_manifest_the_kubelet_cannot_decode_or_expand_is_never_judged_ok(
    data, status, make_check, dd_run_check, aggregator, workdir
):
    """No apiserver or kubelet visible: the manifest is the only evidence."""
    host = f'{workdir}/host'
    write(f'{host}{CA}', certs.valid_ca())
    write(f'{host}{MANIFEST}', data)
    dd_run_check(make_check({'host_root': host}))
    (sc,) = aggregator.service_checks(SC)
    assert sc.status == status, sc.message


@needs_standins
def test_a_running_apiserver_matches_a_manifest_naming_its_ca_through_an_env_variable(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    """The kubelet ran the apiserver with $(CA_FILE) expanded: before, the check compared the literal text with the
    running value and warned of a drift that was not there."""
    ca = write(f'{workdir}/pki/ca.crt', certs.valid_ca())
    text = WITH_ENV + f'    - name: CA_FILE\n      value: {ca}\n'
    write(f'{workdir}/host{MANIFEST}', text.encode())
    apiservers(['/usr/local/bin/kube-apiserver', f'--client-ca-file={ca}', '--tls-cert-file=/etc/kubernetes/pki/x.crt'])
    dd_run_check(make_check({'host_root': f'{workdir}/host'}))
    (sc,) = aggregator.service_checks(SC)
    assert sc.status == AgentCheck.OK and 'kube_distribution:kubeadm' in sc.tags
