"""The package's layout and the single file for checks.d built from it: fresh, equivalent, and merged safely."""

from __future__ import annotations

import ast
import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

from datadog_checks.base import AgentCheck
from datadog_checks.base.stubs import datadog_agent as agent_stub
from datadog_checks.cis_kubernetes import CisKubernetesCheck, judging
from devtools import amalgamate, certs
from tests.conftest import needs_separate_root, needs_standins, write
from tests.test_distributions import CASES, start_node

PACKAGE_DIR = amalgamate.PACKAGE_DIR
MODULES = sorted(PACKAGE_DIR.rglob('*.py'))
APISERVER = '/usr/local/bin/kube-apiserver'
SC = 'cis_kubernetes.apiserver.client_ca_file'
# Steps that compute on data they are given: no system calls, no Agent.
PURE_MODULES = {
    'control',
    'flags',
    'scrubbing',
    'der',
    'x509_names',
    'access',
    'certificates',
    'ca_bundle',
    'judging',
    'wire_names',
    'wire_verdict',
    'reporting',
    'announcements',
    'findings',
    'distributions.setting',
}


def module_imports(path: Path) -> set[str]:
    """Top-level names of what `path` imports from outside the package (relative imports excluded)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != '__future__':
            names |= {f'{node.module}.{alias.name}' for alias in node.names}
    return names


# -- the layout -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize('path', MODULES, ids=lambda p: p.relative_to(PACKAGE_DIR).as_posix())
def test_every_module_is_readable_at_one_sitting(path):
    assert len(path.read_text().splitlines()) <= 400


@pytest.mark.parametrize('path', MODULES, ids=lambda p: p.relative_to(PACKAGE_DIR).as_posix())
def test_only_the_agent_facing_modules_know_the_agent(path):
    name = amalgamate.module_name(path, PACKAGE_DIR)[0]
    agent = {i for i in module_imports(path) if i.startswith('datadog_agent') or i.endswith('.AgentCheck')}
    assert not agent or name in ('check', 'announcing'), agent  # the layer that talks to the Agent


@pytest.mark.parametrize('name', sorted(PURE_MODULES))
def test_pure_steps_make_no_system_calls(name):
    path = PACKAGE_DIR / (name.replace('.', '/') + '.py')
    touching = {i for i in module_imports(path) if i.split('.')[0] in {'os', 'psutil', 'datadog_checks', 'yaml'}}
    allowed = {i for i in touching if i.split('.')[0] == 'yaml'} if name == 'distributions.setting' else set()
    assert touching == allowed, touching  # distributions.setting reads YAML, and computes on nothing else


def test_architecture_lists_every_module():
    text = (amalgamate.ROOT / 'ARCHITECTURE.md').read_text()
    for path in MODULES:
        name = path.relative_to(PACKAGE_DIR).as_posix()
        assert name.startswith('__') or name.endswith('/__init__.py') or f'| `{name}` |' in text, name


def test_judging_statuses_are_the_agents():
    assert (judging.OK, judging.WARNING, judging.CRITICAL, judging.UNKNOWN) == (
        AgentCheck.OK,
        AgentCheck.WARNING,
        AgentCheck.CRITICAL,
        AgentCheck.UNKNOWN,
    )


def test_imports_run_one_way_from_the_check_down():
    modules = amalgamate.load_package()
    order = [m.name for m in amalgamate.dependency_order(modules)]  # raises on a circular import
    assert order[-2:] == ['check', '']  # the check last, then the package's __init__ that exposes it
    assert not any('check' in m.depends_on for name, m in modules.items() if name != '')


# -- the build --------------------------------------------------------------------------------------------------


def test_single_file_is_byte_identical_to_what_the_build_writes():
    assert amalgamate.OUTPUT.read_bytes() == amalgamate.build().encode(), 'run: python -m devtools.amalgamate'
    assert amalgamate.main(['--check']) == 0


def test_single_file_holds_every_module_of_the_package_once():
    text = amalgamate.OUTPUT.read_text()
    for module in amalgamate.load_package().values():
        if module.body and module.name:
            assert text.count(f'\n# {module.relative_path}\n') == 1, module.relative_path
            assert module.body in text
    imports = [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert not [ast.unparse(n) for n in imports if getattr(n, 'level', 0) or 'cis_kubernetes' in ast.unparse(n)]


def make_package(root: Path, files: dict[str, str]) -> Path:
    package = root / 'pkg'
    for name, text in {'__init__.py': 'from .check import Check\n', **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return package


def build_from(package: Path) -> str:
    return amalgamate.build(package, 'pkg')


def test_two_modules_defining_the_same_top_level_name_stop_the_build(tmp_path, monkeypatch):
    monkeypatch.setattr(amalgamate, 'ROOT', tmp_path)
    package = make_package(
        tmp_path,
        {
            'a.py': 'def helper():\n    return 1\n',
            'b.py': 'def helper():\n    return 2\n',
            'check.py': 'from .a import helper\nfrom .b import helper as other\n\nclass Check:\n    pass\n',
        },
    )
    with pytest.raises(amalgamate.BuildError, match='alias'):
        build_from(package)
    (package / 'check.py').write_text('from .a import helper\nfrom .b import VALUE\n\nclass Check:\n    pass\n')
    (package / 'b.py').write_text('VALUE = 2\n\n\ndef helper():\n    return 2\n')
    with pytest.raises(amalgamate.BuildError, match='`helper` is defined at the top of both pkg/a.py and pkg/b.py'):
        build_from(package)


@pytest.mark.parametrize(
    'files, error',
    [
        (  # the same name imported from two places means two things once merged
            {'a.py': 'from os import path\n', 'b.py': 'from sys import path\n'},
            '`path` is defined at the top of both',
        ),
        ({'a.py': 'def open(name):\n    return name\n'}, 'shadows a builtin'),
        ({'a.py': 'def f():\n    from .b import X\n    return X\n', 'b.py': 'X = 1\n'}, 'inside a function'),
        ({'a.py': 'from . import b\n', 'b.py': 'X = 1\n'}, 'import names from a module'),
        ({'a.py': 'NAME = __name__\n'}, '`__name__` differs'),
        ({'a.py': 'X = 1\nimport os\n'}, 'every top-level import must come before the code'),
        ({'a.py': 'from .b import Y\n', 'b.py': 'from .a import Z\nY = 1\n'}, 'circular import'),
        ({'a.py': 'from .b import MISSING\n', 'b.py': 'X = 1\n'}, 'does not define'),
    ],
    ids=[
        'same-name-two-imports',
        'builtin',
        'function-import',
        'module-object',
        'dunder',
        'late-import',
        'cycle',
        'missing',
    ],
)
def test_packages_the_merge_would_change_stop_the_build(tmp_path, monkeypatch, files, error):
    monkeypatch.setattr(amalgamate, 'ROOT', tmp_path)
    importers = ''.join(f'from .{name[:-3]} import {first_name(text)}\n' for name, text in files.items())
    package = make_package(tmp_path, {**files, 'check.py': importers + '\n\nclass Check:\n    pass\n'})
    with pytest.raises(amalgamate.BuildError, match=error):
        build_from(package)


def first_name(text: str) -> str:
    """A name the module binds at its top, for the check module to import (so the module is part of the build)."""
    for node in ast.parse(textwrap.dedent(text)).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            return node.name
        if isinstance(node, ast.Assign):
            return node.targets[0].id
        if isinstance(node, ast.ImportFrom):
            return node.names[0].name
    return 'X'


def test_a_clean_package_builds_into_one_file_that_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(amalgamate, 'ROOT', tmp_path)
    package = make_package(
        tmp_path,
        {
            '__about__.py': "__version__ = '9.9'\n",
            'sub/__init__.py': '"""A subpackage."""\n',
            'sub/parts.py': '"""Parts."""\n\nfrom collections.abc import Mapping\n\nPARTS: Mapping = {"a": 1}\n',
            'words.py': 'from collections.abc import Mapping, Sequence\n\nfrom .sub.parts import PARTS\n\n\n'
            'def count(words: Sequence) -> Mapping:\n    return {w: PARTS.get(w, 0) for w in words}\n',
            'check.py': 'import json\n\nfrom .words import count\n\n\nclass Check:\n'
            '    def run(self, words):\n        return json.dumps(count(words))\n',
        },
    )
    text = build_from(package)
    assert 'for checks.d' in text and '9.9' in text
    assert text.count('from collections.abc import Mapping, Sequence') == 1
    assert text.index('PARTS: Mapping') < text.index('def count') < text.index('class Check')
    namespace: dict = {}
    exec(compile(text, 'one_file.py', 'exec'), namespace)
    assert namespace['Check']().run(['a', 'b']) == '{"a": 1, "b": 0}'
    assert namespace['__version__'] == '9.9'


# -- the single file and the package judge alike ----------------------------------------------------------------


@pytest.fixture(scope='module')
def single_file_class():
    spec = importlib.util.spec_from_file_location('cis_kubernetes_single_file', amalgamate.OUTPUT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module.CisKubernetesCheck
    finally:
        del sys.modules[spec.name]


def submitted(aggregator) -> dict:
    return {
        'service_checks': sorted(
            (s.name, s.status, s.message, tuple(sorted(s.tags)))
            for name in aggregator._service_checks
            for s in aggregator.service_checks(name)
        ),
        'metrics': sorted(
            (m.name, m.value, tuple(sorted(m.tags))) for name in aggregator._metrics for m in aggregator.metrics(name)
        ),
        'events': sorted(str({k: v for k, v in e.items() if k != 'timestamp'}) for e in aggregator.events),
    }


def run_both(cls, aggregator, instance: dict) -> tuple[dict, dict]:
    results = []
    for check_class in (CisKubernetesCheck, cls):
        aggregator.reset()
        agent_stub.reset()
        check = check_class('cis_kubernetes', {}, [dict(instance)])
        check.check_id = 'cis_kubernetes:equivalence'
        assert check.run() == ''
        results.append(submitted(aggregator))
    return results[0], results[1]


@needs_standins
@pytest.mark.parametrize('node', ['passing', 'failing', 'minikube missing file'])
def test_single_file_and_package_judge_stand_in_nodes_alike(node, single_file_class, aggregator, apiservers, workdir):
    assert single_file_class is not CisKubernetesCheck
    ca = write(f'{workdir}/pki/ca.crt', certs.valid_ca())
    argv = {
        'passing': [APISERVER, f'--client-ca-file={ca}'],
        'failing': [APISERVER, f'--client-ca-file={ca}', '--client-ca-file='],
        'minikube missing file': [APISERVER, '--client-ca-file=/var/lib/minikube/certs/missing-ca.crt'],
    }[node]
    apiservers(argv)
    package, single = run_both(single_file_class, aggregator, {'tags': ['team:x']})
    assert package == single
    ((_, status, message, tags),) = package['service_checks']
    assert status == {'passing': 0, 'failing': 2, 'minikube missing file': 2}[node], message
    assert len(package['events']) == 1
    if node == 'minikube missing file':
        assert 'kube_distribution:minikube' in tags and 'Fix: Restore /var/lib/minikube/certs/missing-ca.crt' in message


@needs_separate_root
@pytest.mark.parametrize('variant', ['passing', 'failing'])
def test_single_file_and_package_judge_a_k3s_node_alike(variant, single_file_class, aggregator, apiservers, workdir):
    node = CASES['k3s config override'][variant == 'failing']
    start_node(node, apiservers, f'{workdir}/root')
    package, single = run_both(single_file_class, aggregator, {'host_root': f'{workdir}/empty-host'})
    assert package == single
    ((_, status, _, tags),) = package['service_checks']
    assert 'kube_distribution:k3s' in tags
    assert status == (AgentCheck.OK if variant == 'passing' else AgentCheck.CRITICAL)
