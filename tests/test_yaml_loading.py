"""YAML on the node (static pod manifests, k3s, RKE2 and OpenShift configuration) read as pyyaml's safe loader reads it,
with libyaml's parser as the Agent itself uses it, and never a crash of the interpreter."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from datadog_checks.base import AgentCheck
from datadog_checks.cis_kubernetes.distributions import manifests, setting
from datadog_checks.cis_kubernetes.distributions.setting import load_yaml
from devtools import certs
from tests.conftest import needs_standins, write

DATA = Path(__file__).parent / 'data'
KUBEADM_MANIFEST = (DATA / 'manifests' / 'kubeadm-kube-apiserver.yaml').read_text()
MANIFEST = '/etc/kubernetes/manifests/kube-apiserver.yaml'
SC = 'cis_kubernetes.apiserver.client_ca_file'
needs_libyaml = pytest.mark.skipif(not yaml.__with_libyaml__, reason='this pyyaml was built without libyaml')

# Documents whose reading could differ between parsers: YAML 1.1 scalars, anchors and merge keys, block scalars,
# quoting and escapes, flow style, comments, a BOM, CRLF, tabs, documents that are not YAML.
EDGE_DOCUMENTS = [
    'a: on\nb: off\nc: yes\nd: no\ne: y\nf: ~\ng: 0755\nh: 0o17\ni: 1:20\nj: 1_000\nk: .inf\nl: -.NaN\n',
    'when: 2001-12-14t21:59:43.10-05:00\nday: 2002-12-14\n',
    'base: &b {x: 1, y: [1, 2]}\nderived:\n  <<: *b\n  y: 3\nalias: *b\n',
    'literal: |\n  line one\n   line two\n\nfolded: >-\n  folded\n  text\n\n  para\nkeep: |+\n  x\n\n',
    "single: 'it''s'\ndouble: \"tab\\there \\u00e9 \\x41 \\N \\_\"\nplain: a b  # comment\n",
    '- [a, b, {c: d, e: [f, g]}]\n- ? complex key\n  : value\n- !!str 123\n- !!binary aGVsbG8=\n',
    '\ufeffkey: value\r\nother: [1,\r\n 2]\r\n',
    '--- \nonly: document\n...\n',
    'a: 1\n---\nb: 2\n',  # two documents: not one
    'a: [1, 2\n',
    'key: value\n bad indent: x\n',
    '{a: 1, a: 2}\n',  # a repeated key: the last wins
    '',
    '# only a comment\n',
    '- - - - nested\n',
    '!!python/object:os.system x\n',  # safe loading refuses it
    'kube-apiserver-arg:\n  - "client-ca-file=/etc/ca.crt"\n  - anonymous-auth=false\n',
    KUBEADM_MANIFEST,
    (DATA / 'process_identities.yaml').read_text(),
    (DATA / 'deploy' / 'helm' / 'values.yaml').read_text(),
]


# Where pure-Python pyyaml and libyaml disagree, the check reads as libyaml does: the Agent's own loader, and the
# parser the kubelet's go-yaml was ported from.
LIBYAML_READINGS = [
    ('key:\tvalue\n', {'key': 'value'}),  # a tab after the colon: separation space to the spec and libyaml
    ('"\\ud800": x\n', None),  # an escaped lone surrogate is no character: libyaml refuses the document
]


# Scalars pyyaml's safe constructors fail on with exceptions that are not YAMLError. A date that is no date is
# plausible in any configuration (go-yaml keeps it as a string); none may cost the check its verdict.
UNCONSTRUCTIBLE = [
    'a: 2001-13-01\n',
    'a: 2001-02-30 10:00:00\n',
    'a: !!int abc\n',
    'a: !!float x\n',
    'a: !!timestamp x\n',
    'a: 0x_\n',
    'a: !!int 0b2\n',
    'a: !!bool maybe\n',
]


@pytest.mark.parametrize('text', UNCONSTRUCTIBLE)
def test_a_scalar_pyyaml_cannot_construct_makes_the_document_unreadable_not_an_error(text):
    assert load_yaml(text) is None


def pure_python(text: str):
    try:
        return yaml.load(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return None


@pytest.mark.parametrize('text', EDGE_DOCUMENTS, ids=range(len(EDGE_DOCUMENTS)))
def test_documents_read_as_the_pure_python_safe_loader_reads_them(text):
    assert load_yaml(text) == pure_python(text)


@needs_libyaml
@pytest.mark.parametrize('text', EDGE_DOCUMENTS, ids=range(len(EDGE_DOCUMENTS)))
def test_documents_read_as_the_agents_own_loader_reads_them(text):
    """rtloader's own YAML conversions use CSafeLoader (DataDog/datadog-agent rtloader/common/stringutils.c)."""
    try:
        agent = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        agent = None
    assert load_yaml(text) == agent


@pytest.mark.parametrize(('text', 'expected'), LIBYAML_READINGS)
def test_where_the_parsers_disagree_the_reading_is_libyamls(text, expected):
    assert load_yaml(text) == expected != pure_python(text)
    if yaml.__with_libyaml__:
        try:
            agent = yaml.load(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            agent = None
        assert agent == expected


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.dates(),
    st.datetimes(timezones=st.just(datetime.UTC)),
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from([{}, {'default_flow_style': True}, {'default_style': '"'}, {'width': 4}]))
def test_generated_documents_read_alike(document, style):
    text = yaml.safe_dump(document, allow_unicode=True, **style)
    assert load_yaml(text) == pure_python(text)


def spy_loaders(monkeypatch) -> list[type]:
    """The class of each loader load_yaml reads a document with."""
    loaders = []
    real_load = yaml.load
    monkeypatch.setattr(yaml, 'load', lambda text, Loader: loaders.append(Loader) or real_load(text, Loader=Loader))
    return loaders


@needs_libyaml
def test_a_configuration_is_read_with_the_agents_csafeloader(monkeypatch):
    loaders = spy_loaders(monkeypatch)
    assert load_yaml('kind: Pod\nspec:\n  containers: []\n')['kind'] == 'Pod'
    assert loaders == [yaml.CSafeLoader]


@needs_libyaml
def test_a_document_that_may_nest_deep_is_composed_in_python_on_libyamls_parser(monkeypatch):
    text = 'a: ' + '[' * 300 + ']' * 300 + '\n' + '#' * 400 + '\n'  # 300 deep, a bound of over 1,000
    expected = pure_python(text)
    loaders = spy_loaders(monkeypatch)
    assert setting.nesting_bound(text) > setting.C_COMPOSER_MAX_DEPTH
    assert load_yaml(text) == expected is not None
    (loader,) = loaders
    assert yaml._yaml.CParser in loader.__mro__ and loader.compose_node is yaml.composer.Composer.compose_node


def nesting(text: str) -> int:
    """The depth of the deepest node, from pure-Python pyyaml's events."""
    depth = deepest = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        deepest = max(deepest, depth + isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)))
    return deepest


NESTED_SHAPES = [
    '- - - - - x\n',
    'a:\n- b:\n  - c:\n    - d: [e, {f: [g]}]\n',
    '? - - k\n: - - v\n',
    'a: {b: {c: {d: [[[x]]]}}}\n',
    '- a: &x [1, [2, [3]]]\n  b: *x\n',
    KUBEADM_MANIFEST,
]


@pytest.mark.parametrize('text', NESTED_SHAPES)
def test_the_nesting_bound_is_at_least_the_depth(text):
    assert setting.nesting_bound(text) >= nesting(text)


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from([{}, {'default_flow_style': True}, {'indent': 2}, {'width': 2}]))
def test_the_nesting_bound_is_at_least_the_depth_of_generated_documents(document, style):
    text = yaml.safe_dump(document, allow_unicode=True, **style)
    assert setting.nesting_bound(text) >= nesting(text)


@pytest.mark.parametrize(
    'shape',
    [
        "'[' * depth + ']' * depth",
        "'{a: ' * depth + '1' + '}' * depth",
        "''.join(' ' * i + 'k:\\n' for i in range(min(depth, 1400))) + ' ' * 1400 + 'v\\n'",  # 1 MiB at most
        "'- ' * depth + 'x\\n'",
    ],
    ids=['flow-sequences', 'flow-mappings', 'block-mappings', 'compact-sequences'],
)
def test_a_document_nested_deeper_than_any_configuration_is_not_yaml_and_crashes_nothing(shape):
    """CSafeLoader's composer recurses in C: at 30,000 levels it crashed the interpreter (SIGSEGV) on this machine.
    In a child, so that a crash fails this test instead of the suite."""
    script = textwrap.dedent(
        f"""
        from datadog_checks.cis_kubernetes.distributions.setting import load_yaml
        for depth in (1000, 30000, 200000):
            assert load_yaml({shape}) is None, depth
        print('survived')
        """
    )
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == 'survived', (result.returncode, result.stderr[-500:])


def test_the_kubeadm_manifest_sets_the_client_ca_file():
    assert manifests.manifest_setting(KUBEADM_MANIFEST) == manifests.ManifestSetting('/etc/kubernetes/pki/ca.crt')


@needs_standins
def test_a_manifest_with_a_date_that_is_no_date_leaves_the_running_apiserver_judged(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    ca = write(f'{workdir}/pki/ca.crt', certs.valid_ca())
    text = KUBEADM_MANIFEST.replace('/etc/kubernetes/pki/ca.crt', ca).replace(
        'creationTimestamp: null', 'creationTimestamp: 2001-13-01'
    )
    write(f'{workdir}/host{MANIFEST}', text.encode())
    apiservers(['/usr/local/bin/kube-apiserver', f'--client-ca-file={ca}', '--tls-cert-file=/etc/kubernetes/pki/x.crt'])
    dd_run_check(make_check({'host_root': f'{workdir}/host'}))
    (sc,) = aggregator.service_checks(SC)
    assert sc.status == AgentCheck.OK and 'kube_distribution:kubeadm' in sc.tags


# -- the manifest at each scan ---------------------------------------------------------------------------------------


@needs_standins
def test_an_unchanged_manifest_is_parsed_once_and_a_changed_one_again(
    make_check, dd_run_check, aggregator, apiservers, workdir, monkeypatch
):
    """Every scan reads the static pod manifest again (rescan_every 1: every run); only new content is parsed."""
    ca = write(f'{workdir}/pki/ca.crt', certs.valid_ca())
    write(f'{workdir}/host{MANIFEST}', KUBEADM_MANIFEST.replace('/etc/kubernetes/pki/ca.crt', ca).encode())
    apiservers(['/usr/local/bin/kube-apiserver', f'--client-ca-file={ca}', '--tls-cert-file=/etc/kubernetes/pki/x.crt'])
    parsed = []
    real_load_yaml = manifests.load_yaml
    monkeypatch.setattr(manifests, 'load_yaml', lambda *a, **k: parsed.append(1) or real_load_yaml(*a, **k))
    check = make_check({'host_root': f'{workdir}/host', 'rescan_every': 1})
    for _ in range(3):
        aggregator.reset()
        dd_run_check(check)
        (sc,) = aggregator.service_checks(SC)
        assert sc.status == AgentCheck.OK and 'kube_distribution:kubeadm' in sc.tags
    assert len(parsed) == 1
    os.unlink(f'{workdir}/host{MANIFEST}')
    write(f'{workdir}/host{MANIFEST}', KUBEADM_MANIFEST.encode())  # now names another file than the process uses
    aggregator.reset()
    dd_run_check(check)
    (sc,) = aggregator.service_checks(SC)
    assert len(parsed) == 2
    assert sc.status == AgentCheck.WARNING and MANIFEST in sc.message
