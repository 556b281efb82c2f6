"""Static pod manifests: where the kubelet of each distribution finds kube-apiserver's, and the value they set."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..control import CONTROL
from ..files_in_root import CONFIG_FILE_SIZE, read_file_in_root
from ..flags import effective_flags
from ..processes import APISERVER_PROGRAM
from .setting import as_list, as_mapping, load_yaml

KUBEADM_MANIFEST = '/etc/kubernetes/manifests/kube-apiserver.yaml'
RKE2_MANIFEST = '/var/lib/rancher/rke2/agent/pod-manifests/kube-apiserver.yaml'
# Distributions whose kubelet starts kube-apiserver from a static pod manifest file, and where that file is.
STATIC_POD_MANIFESTS = {
    'kubeadm': KUBEADM_MANIFEST,
    'kind': KUBEADM_MANIFEST,
    'minikube': KUBEADM_MANIFEST,
    'kubespray': KUBEADM_MANIFEST,
    'rke2': RKE2_MANIFEST,
}


@dataclass(frozen=True)
class ManifestSetting:
    """What a static pod manifest sets for kube-apiserver."""

    value: str | None  # its effective --client-ca-file
    comparable: bool = True  # False: the kubelet would refuse it, or it runs the apiserver in a way not read here


def read_manifest(root: str, path: str) -> bytes | None:
    """The bytes of the static pod manifest at `path`, read through `root`; None when there is none. A manifest the
    Agent may not read counts as absent (nothing to compare with)."""
    content = read_file_in_root(root, root, path, CONFIG_FILE_SIZE, with_steps=False)
    return None if content.problem == 'permission' else content.data


def manifest_setting(data: bytes | str) -> ManifestSetting:
    """What a static pod manifest sets for kube-apiserver. A manifest the kubelet would refuse to decode
    (tests/test_manifest_oracle.py) sets nothing this check may compare or judge."""
    if isinstance(data, str):
        data = data.encode()
    is_json = data.decode('utf-8', 'replace').lstrip(GO_SPACES)[:1] == '{'
    if is_json:  # Go's JSON decoding replaces invalid UTF-8 in strings with U+FFFD, as this decoding does
        text = data.decode('utf-8', 'replace')
        document = as_mapping(_json_pod(text))
    else:
        text = yaml_text(data)
        if text is None or _other_yaml_version(text):
            return ManifestSetting(None, comparable=False)
        document = as_mapping(load_yaml(text, first_document=True))
        if '<<' in text or _go_yaml_reads_otherwise(document):
            document = as_mapping(load_yaml(text, _as_go_yaml_v2, first_document=True))
    if document.get('apiVersion') != 'v1' or document.get('kind') != 'Pod' or _has_null_key(document):
        return ManifestSetting(None, comparable=False)
    if '\\/' in text and not is_json:
        return ManifestSetting(None, comparable=False)  # go-yaml v2 knows no `\/` escape (libyaml does)
    containers = as_mapping(document.get('spec')).get('containers') or []
    if not isinstance(containers, list) or not all(_decodes_as_container(c) for c in containers):
        return ManifestSetting(None, comparable=False)
    container = next((c for c in containers if c.get('name') == 'kube-apiserver'), containers[0] if containers else {})
    argv = expanded_argv(container)
    arguments = None if argv is None else apiserver_arguments(argv)
    if arguments is None:
        return ManifestSetting(None, comparable=False)
    return ManifestSetting(effective_flags(arguments).get(CONTROL.flag))


# What Go's unicode.IsSpace takes, where apimachinery's ToJSON looks for the `{` of a JSON file.
GO_SPACES = '\t\n\v\f\r \x85\xa0\u1680' + ''.join(map(chr, range(0x2000, 0x200B))) + '\u2028\u2029\u202f\u205f\u3000'
YAML_DIRECTIVE = re.compile(r'%YAML[ \t]+([0-9]+)\.([0-9]+)')


def yaml_text(data: bytes) -> str | None:
    """The characters go-yaml v2 reads from a file's bytes (reader.go, yaml_parser_determine_encoding): UTF-16 after
    its byte order mark, UTF-8 otherwise; None where it refuses them (a Latin-1 byte, an overlong or surrogate
    sequence: Python's strict decoders refuse exactly those). The characters YAML forbids (controls) are refused by
    libyaml's reader when the loader reads the text, as by go-yaml's."""
    try:
        if data[:2] in (b'\xff\xfe', b'\xfe\xff'):
            return data.decode('utf-16')
        return data.decode('utf-8-sig')
    except UnicodeDecodeError:
        return None


def _other_yaml_version(text: str) -> bool:
    """A `%YAML` directive for another version than 1.1, which go-yaml v2 refuses (parserc.go,
    yaml_parser_process_directives: "found incompatible YAML document") and libyaml reads as 1.2. Directives stand
    before the first document's `---`, after blank and comment lines at most."""
    for line in text.split('\n'):
        if line.startswith('%'):
            version = YAML_DIRECTIVE.match(line)
            if version is not None and version.groups() != ('1', '1'):
                return True
        elif line.strip() and not line.lstrip().startswith('#'):
            return False
    return False


def expanded_argv(container: Mapping) -> list[str] | None:
    """The container's command and args as the kubelet runs them: `$(VAR)` expanded from the container's `env`
    (kubernetes pkg/kubelet/container/helpers.go ExpandContainerCommandAndArgs, third_party/forked/golang/expansion
    Expand); None when a reference names no variable set here by value (valueFrom, envFrom, a service link: the
    kubelet may know it, the check cannot)."""
    argv = as_list(container.get('command')) + as_list(container.get('args'))
    if not any('$' in word for word in argv):
        return argv
    env: dict[str, str | None] = {}  # name -> value; None: not known here
    for variable in _listed(container.get('env')):
        if not isinstance(variable, Mapping) or not isinstance(variable.get('name'), str):
            return None
        value = variable.get('value')
        known = variable.get('valueFrom') is None and isinstance(value, str | None)
        env[variable['name']] = expand_references(value or '', env) if known else None
    expanded = [expand_references(word, env) for word in argv]
    return None if None in expanded else expanded


def expand_references(text: str, env: Mapping[str, str | None]) -> str | None:
    """`text` with `$(NAME)` replaced by NAME's value and `$$` by `$`, as Kubernetes' expansion.Expand does; None when
    a reference's value is not known here, or `$` precedes a non-ASCII character (Go then splits its bytes)."""
    out, i = [], 0
    while i < len(text):
        character = text[i]
        if character != '$' or i + 1 == len(text):
            out.append(character)
            i += 1
            continue
        following = text[i + 1]
        end = text.find(')', i + 2) if following == '(' else -1
        if end >= 0:
            value = env.get(text[i + 2 : end])
            if value is None:  # not set by value: the kubelet may know it (a service link), or leave it as written
                return None
            out.append(value)
            i = end + 1
        elif not following.isascii():
            return None
        else:  # `$$` is `$`; `$(` with no `)` and `$x` stay as they are
            out.append('$' if following == '$' else '$' + following)
            i += 2
    return ''.join(out)


# The kubelet reads a static pod file as sigs.k8s.io/yaml's YAMLToJSON does (go-yaml v2 into interface{}, map keys
# made strings, JSON), then decodes a v1 Pod from that JSON (kubernetes pkg/kubelet/config/common.go,
# tryDecodeSinglePod); a file whose first non-space character is `{` is decoded as JSON as it is (apimachinery
# util/yaml ToJSON). What it refuses, it never runs: where pyyaml reads such a file, it is not comparable, as an
# unreadable manifest is. tests/test_manifest_oracle.py compares the two on thousands of manifests.


# Plain scalars go-yaml v2 resolves to a boolean or a number where pyyaml keeps a string (gopkg.in/yaml.v2 v2.4.0
# resolve.go: `y`, `n` and their capitals are booleans; after removing `_`, whatever strconv.ParseInt or ParseUint
# takes with base 0 (`0o17`, `08` as a float) and YAML-style floats (`1e3`) are numbers). A little wider than Go
# where underscores sit oddly: such a token is then not comparable, never misread.
GO_YAML_NON_STRING = re.compile(
    r"""^(?:[yYnN]|[-+]?(?:0[bB][01_]+|0[oO][0-7_]+|0[xX][0-9a-fA-F_]+"""
    r"""|(?:\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9_]+)?))$"""
)
GO_YAML_NON_STRING_TAG = 'tag:github.com/DataDog/cis_kubernetes,go-yaml-v2-non-string'


@dataclass(frozen=True)
class GoYamlNonString:
    """A plain scalar pyyaml reads as a string and go-yaml v2 as a boolean or number: no string to the kubelet."""

    text: str


def _go_yaml_reads_otherwise(document: Mapping) -> bool:
    """Whether go-yaml v2 may read the containers differently: a string among their names, commands or args that
    would not be one to go-yaml if it was written plain."""
    containers = as_mapping(document.get('spec')).get('containers')
    for container in containers if isinstance(containers, list) else []:
        if isinstance(container, Mapping):
            words = [container.get('name'), *_listed(container.get('command')), *_listed(container.get('args'))]
            if any(isinstance(word, str) and GO_YAML_NON_STRING.match(word) for word in words):
                return True
    return False


def _listed(value) -> list:
    return value if isinstance(value, list) else []


@functools.cache
def _as_go_yaml_v2(loader):
    """`loader` reading plain scalars and merge keys as go-yaml v2 does, where pyyaml differs."""
    import yaml

    class GoYamlV2Loader(loader):
        def flatten_mapping(self, node):
            """go-yaml v2 (decode.go, mapping and merge) sets a merged mapping's pairs where `<<` stands, over the keys
            before it; pyyaml lets every explicit key win. Of a merged list, the first mapping wins in both."""
            pairs = []
            for key_node, value_node in node.value:
                if key_node.tag != 'tag:yaml.org,2002:merge':
                    if key_node.tag == 'tag:yaml.org,2002:value':
                        key_node.tag = 'tag:yaml.org,2002:str'
                    pairs.append((key_node, value_node))
                    continue
                merged = [value_node] if isinstance(value_node, yaml.MappingNode) else value_node.value
                if not isinstance(value_node, (yaml.MappingNode, yaml.SequenceNode)) or not all(
                    isinstance(mapping, yaml.MappingNode) for mapping in merged
                ):
                    raise yaml.constructor.ConstructorError(None, None, 'merge of a non-mapping', value_node.start_mark)
                for mapping in reversed(merged):
                    self.flatten_mapping(mapping)
                    pairs.extend(mapping.value)
            node.value = pairs

    GoYamlV2Loader.add_implicit_resolver(GO_YAML_NON_STRING_TAG, GO_YAML_NON_STRING, list('yYnN+-.0123456789'))
    GoYamlV2Loader.add_constructor(
        GO_YAML_NON_STRING_TAG, lambda self, node: GoYamlNonString(self.construct_scalar(node))
    )
    return GoYamlV2Loader


def _decodes_as_container(container) -> bool:
    """A container the Pod decoder takes as pyyaml read it: a mapping whose name is a string and whose command and
    args are lists of strings. A YAML 1.1 number, boolean or date among them (`- 443`, `- on`) is no string to the
    kubelet, and pyyaml's `str()` of it (`443`, `True`) not the text the kubelet would pass either. A null container
    decodes to one without a name, which the kubelet's validation refuses."""
    if not isinstance(container, Mapping) or not isinstance(container.get('name') or '', str):
        return False
    return all(_is_string_list(container.get(key)) for key in ('command', 'args'))


def _is_string_list(value) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(item, str) for item in value))


def _has_null_key(document) -> bool:
    """A null mapping key anywhere (`~: x`): YAMLToJSON makes no JSON key of it, so the kubelet refuses the file.
    Walked without recursion (documents nest up to C_COMPOSER_MAX_DEPTH), each shared (aliased) node once. Documents
    are made of dicts and lists (pyyaml's and json's), which isinstance tells apart without abc's slower check."""
    pending, seen = [document], set()
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            if None in node:
                return True
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return False


def _json_pod(text: str):
    """The document as the kubelet's JSON decoding reads it; None where that differs from Python's: a repeated key
    (Go decodes the later object into the same struct, keeping what it leaves out), NaN or Infinity (not JSON to
    Go), a lone surrogate escape (U+FFFD to Go)."""

    def refuse_repeated(pairs):
        if len({key for key, _ in pairs}) != len(pairs):
            raise ValueError('repeated key')
        return dict(pairs)

    def refuse_constant(name):
        raise ValueError(name)

    try:
        document = json.loads(text, object_pairs_hook=refuse_repeated, parse_constant=refuse_constant)
        json.dumps(document, ensure_ascii=False).encode()
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return None
    return document


# kube-log-runner, formerly go-runner (kubernetes/kubernetes staging/src/k8s.io/component-base/logs/kube-log-runner/
# kube-log-runner.go at 04791b4906602ffda5ccf9bc4c84d3329f1d7080): Go flag-package options, then the command it runs.
LOG_RUNNERS = frozenset({'go-runner', 'kube-log-runner'})
LOG_RUNNER_VALUE_OPTIONS = frozenset({'log-file'})  # its only option that takes a separate value
SHELLS = frozenset({'sh', 'bash', 'ash', 'dash'})


def apiserver_arguments(argv: Sequence[str]) -> list[str] | None:
    """kube-apiserver's own arguments in a container's command (`command` + `args`), through the wrappers it is run
    with (kube-log-runner, `sh -c "exec kube-apiserver ..."`, hyperkube); None when they cannot be told."""
    if not argv:
        return None
    if argv[0].startswith('-'):  # only `args`: the image's entrypoint is the apiserver
        return list(argv)
    program = argv[0].rsplit('/', 1)[-1]
    if _is_apiserver_program(program):
        return list(argv[1:])
    if program == 'hyperkube' and argv[1:2] in (['apiserver'], [APISERVER_PROGRAM]):
        return list(argv[2:])
    if program in LOG_RUNNERS:
        return apiserver_arguments(_after_go_flags(argv[1:]))
    if program in SHELLS:
        return _shell_apiserver_arguments(argv[1:])
    return None


def _after_go_flags(args: Sequence[str]) -> list[str]:
    """What Go's flag package leaves after the options: from the first non-option, or after `--`."""
    i = 0
    while i < len(args) and args[i].startswith('-') and args[i] != '-':
        if args[i] == '--':
            return list(args[i + 1 :])
        name = args[i].lstrip('-')
        i += 2 if name in LOG_RUNNER_VALUE_OPTIONS else 1
    return list(args[i:])


def _shell_apiserver_arguments(args: Sequence[str]) -> list[str] | None:
    """`sh -c SCRIPT`: the words after the apiserver in the script, up to the end of its command. None when the script
    is not read here or the apiserver's words use shell expansion (variables, command substitution)."""
    import shlex

    options = list(args[: next((i for i, a in enumerate(args) if not a.startswith('-')), len(args))])
    if not any('c' in option[1:] for option in options if not option.startswith('--')) or len(options) == len(args):
        return None
    lexer = shlex.shlex(args[len(options)], posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:  # unbalanced quotes: the shell would refuse it too
        return None
    for i, word in enumerate(words):
        program = word.rsplit('/', 1)[-1]
        if program in ('hyperkube', *LOG_RUNNERS) or _is_apiserver_program(program):
            command = []
            for following in words[i:]:
                if following and all(character in '();<>|&' for character in following):
                    break  # a control operator ends the apiserver's command
                command.append(following)
            if any('$' in word or '`' in word for word in command):
                return None
            return apiserver_arguments(command)
    return None


def _is_apiserver_program(program: str) -> bool:
    return program == APISERVER_PROGRAM  # exactly: kops's kube-apiserver-healthcheck is not the apiserver
