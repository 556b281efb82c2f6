"""Both install routes, as the Agent performs them: the wheel through its install gate, and one file in checks.d."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from devtools import certs
from tests.conftest import needs_standins, write

ROOT = Path(__file__).resolve().parent.parent
LOADER = Path(__file__).resolve().parent / 'agent_loader.py'
CHECK_FILE = ROOT / 'checks.d' / 'cis_kubernetes.py'  # built from the package by devtools.amalgamate
APISERVER = '/usr/local/bin/kube-apiserver'
PACKAGE_DIR = ROOT / 'datadog_checks' / 'cis_kubernetes'
# The check's modules; the Datadog-side command (assets/) runs outside the Agent with its own extra.
CHECK_MODULES = [p for p in sorted(PACKAGE_DIR.rglob('*.py')) if p.relative_to(PACKAGE_DIR).parts[0] != 'assets']


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('wheel')
    source = out / 'source'  # a copy: setuptools leaves build/ and egg-info beside the sources it builds
    shutil.copytree(ROOT / 'datadog_checks', source / 'datadog_checks', ignore=shutil.ignore_patterns('__pycache__'))
    for name in ('setup.py', 'README.md'):
        shutil.copy(ROOT / name, source / name)
    command = [sys.executable, '-m', 'pip', 'wheel', '--quiet', '--no-deps', '--no-build-isolation', '-w', str(out)]
    subprocess.run([*command, str(source)], check=True, cwd=out)
    (path,) = out.glob('datadog_cis_kubernetes-*.whl')
    return path


def test_wheel_passes_the_agents_install_gate(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata,) = [n for n in names if n.endswith('.dist-info/METADATA')]
        requires = [line for line in archive.read(metadata).decode().splitlines() if line.startswith('Requires-Dist:')]
    assert any(line.split()[1].startswith('datadog-checks-base') for line in requires), requires
    assert 'datadog_checks/cis_kubernetes/data/conf.yaml.example' in names
    assert 'datadog_checks/cis_kubernetes/assets/files/dashboards/overview.json' in names  # for the assets command
    assert 'datadog_checks/cis_kubernetes/assets/files/logs/cis_kubernetes.yaml' in names
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / 'datadog_checks' / 'cis_kubernetes').rglob('*.py')}
    assert modules <= names, modules - names  # every module of the package, subpackages included
    assert 'datadog_checks/__init__.py' not in names  # that file belongs to datadog-checks-base
    assert wheel.name.startswith('datadog_cis_kubernetes-')  # check name = package name minus datadog-, - to _


def wheel_requirements(wheel: Path, extras: set[str]) -> list[Requirement]:
    """Requires-Dist of the wheel that apply with `extras` (and those that apply without any)."""
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith('.dist-info/METADATA')]
        lines = archive.read(metadata).decode().splitlines()
    requirements = [Requirement(line.split(':', 1)[1].strip()) for line in lines if line.startswith('Requires-Dist:')]
    return [r for r in requirements if r.marker is None or any(r.marker.evaluate({'extra': e}) for e in extras | {''})]


def declared_closure(requirements: list[Requirement]) -> list[importlib.metadata.Distribution]:
    """The distributions pip would install for `requirements`, taken from this environment: each requirement with
    the extras it names, then theirs, recursively."""
    found: dict[str, importlib.metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        key = (requirement.name.lower().replace('_', '-'), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        distribution = importlib.metadata.distribution(key[0])
        found[key[0]] = distribution
        for line in distribution.requires or []:
            nested = Requirement(line)
            extras = set(requirement.extras) | {''}
            if nested.marker is None or any(nested.marker.evaluate({'extra': e}) for e in extras):
                todo.append(nested)
    return list(found.values())


def fresh_site(target: Path, wheel: Path, extras: set[str]) -> list[str]:
    """A site directory holding only the wheel and what it declares for `extras`, as `pip install wheel[extras]`
    into a new virtual environment would (copied from this environment: the suite needs no package index)."""
    command = [sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps', '--no-index', '--target', str(target)]
    subprocess.run([*command, str(wheel)], check=True)  # first: pip --target does not merge into datadog_checks/
    distributions = declared_closure(wheel_requirements(wheel, extras))
    for distribution in distributions:
        root = Path(distribution.locate_file(''))
        for file in distribution.files or []:
            if file.parts[0] == '..':  # console scripts outside site-packages
                continue
            source = root / file
            if source.is_file():
                (target / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / file)
    return sorted(d.metadata['Name'].lower() for d in distributions)


def import_in(site: Path, statement: str) -> subprocess.CompletedProcess:
    env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'PYTHONPATH': str(site)}
    command = [sys.executable, '-S', '-c', statement]  # -S: nothing of this environment but the standard library
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=site)


def test_wheel_imports_in_a_fresh_environment_with_its_declared_dependencies(wheel, tmp_path):
    # integrations-core declares a check's runtime dependencies in its `deps` extra (process/pyproject.toml:
    # deps = ["psutil==5.9.6"]) and requires only datadog-checks-base.
    requirements = wheel_requirements(wheel, set())
    assert [r.name for r in requirements] == ['datadog-checks-base'], requirements
    installed = fresh_site(tmp_path / 'site', wheel, {'deps'})
    assert 'psutil' in installed and 'datadog-api-client' not in installed
    done = import_in(tmp_path / 'site', 'import datadog_checks.cis_kubernetes as m; print(m.CisKubernetesCheck)')
    assert done.returncode == 0, done.stderr
    assert 'CisKubernetesCheck' in done.stdout


def test_without_the_deps_extra_the_wheel_cannot_import(wheel, tmp_path):
    # The fresh environment above is a real test: the wheel and datadog-checks-base alone do not import.
    fresh_site(tmp_path / 'site', wheel, set())
    done = import_in(tmp_path / 'site', 'import datadog_checks.cis_kubernetes')
    assert done.returncode != 0 and 'ModuleNotFoundError' in done.stderr


def run_like_the_agent(python_path: list[Path], name: str, cwd: Path) -> dict:
    """A clean interpreter: no site processing (so no editable install of this repo), only the given paths."""
    env = {
        'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
        'PYTHONPATH': os.pathsep.join([*map(str, python_path), sysconfig.get_paths()['purelib']]),
    }
    result = subprocess.run(
        [sys.executable, '-S', str(LOADER), name], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@needs_standins
def test_wheel_installed_without_dependencies_is_found_and_runs(wheel, tmp_path, apiservers, workdir):
    target = tmp_path / 'site'
    subprocess.run(
        [
            sys.executable,
            '-m',
            'pip',
            'install',
            '--quiet',
            '--no-deps',
            '--no-index',
            '--target',
            str(target),
            str(wheel),
        ],
        check=True,
    )
    ca = write(f'{workdir}/ca.crt', certs.valid_ca())
    apiservers([APISERVER, f'--client-ca-file={ca}'])
    result = run_like_the_agent([target], 'cis_kubernetes', tmp_path)
    assert result['module'] == 'datadog_checks.cis_kubernetes'
    assert result['file'].startswith(str(target))
    assert result['class'] == 'CisKubernetesCheck'
    assert result['error'] == ''
    assert result['service_checks'] == [['cis_kubernetes.apiserver.client_ca_file', 0, '']]


@needs_standins
def test_one_file_in_checks_d_is_found_and_runs(tmp_path, apiservers):
    checks_d = tmp_path / 'checks.d'
    checks_d.mkdir()
    shutil.copyfile(CHECK_FILE, checks_d / 'cis_kubernetes.py')
    apiservers([APISERVER, '--client-ca-file='])
    result = run_like_the_agent([checks_d], 'cis_kubernetes', tmp_path)
    assert result['module'] == 'cis_kubernetes'
    assert result['file'] == str(checks_d / 'cis_kubernetes.py')
    assert result['class'] == 'CisKubernetesCheck'
    assert result['error'] == ''
    ((name, status, message),) = result['service_checks']
    assert (name, status) == ('cis_kubernetes.apiserver.client_ca_file', 2)
    assert message.startswith('FAIL')
    assert 'cis_kubernetes.control.compliant' in result['metrics']


@pytest.mark.parametrize(
    'path',
    [CHECK_FILE, *CHECK_MODULES],
    ids=lambda p: p.relative_to(ROOT).as_posix(),
)
def test_check_file_imports_only_what_the_agent_ships(path):
    allowed = {'datadog_checks', 'psutil', 'cryptography', 'yaml', 'pydantic', 'datadog_agent'}
    tree = __import__('ast').parse(path.read_text())
    imported = set()
    for node in __import__('ast').walk(tree):
        if type(node).__name__ == 'Import':
            imported |= {alias.name.split('.')[0] for alias in node.names}
        elif type(node).__name__ == 'ImportFrom' and node.level == 0:
            imported.add(node.module.split('.')[0])
    assert imported - set(sys.stdlib_module_names) <= allowed


def test_the_assets_command_imports_its_client_only_where_it_runs():
    # datadog-api-client (and urllib3, its HTTP library) only in the command's modules, never in the check's
    for path in sorted((PACKAGE_DIR / 'assets').glob('*.py')):
        tree = __import__('ast').parse(path.read_text())
        top = {n.module.split('.')[0] for n in tree.body if type(n).__name__ == 'ImportFrom' and n.level == 0}
        top |= {a.name.split('.')[0] for n in tree.body if type(n).__name__ == 'Import' for a in n.names}
        outside = top - set(sys.stdlib_module_names) - {'yaml'}
        assert outside <= ({'datadog_api_client'} if path.name == 'organisation.py' else set()), (path.name, outside)


def test_the_wheel_with_its_assets_extra_runs_the_datadog_side_command(wheel, tmp_path):
    # A fresh environment with the wheel and what its `assets` extra declares: the command runs, with the asset files
    # the wheel carries, against the API stand-in. (It imports the package, whose __init__ imports the check.)
    from tests.datadog_api_server import API_KEY, APP_KEY, ApiServer, Organisation

    installed = fresh_site(tmp_path / 'site', wheel, {'assets'})
    assert 'datadog-api-client' in installed
    server = ApiServer(Organisation())
    try:
        env = {
            'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
            'PYTHONPATH': str(tmp_path / 'site'),
            'DD_API_KEY': API_KEY,
            'DD_APP_KEY': APP_KEY,
        }
        command = [sys.executable, '-S', '-m', 'datadog_checks.cis_kubernetes.assets', 'plan', '--api-url', server.url]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    assert 'plan: 8 to write, 0 unchanged; nothing was written' in done.stdout
    assert server.organisation.refused == []
