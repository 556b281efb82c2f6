"""Both install routes, as the Agent performs them: the wheel through its install gate, and one file in checks.d."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from devtools import certs
from tests.conftest import needs_standins, write

ROOT = Path(__file__).resolve().parent.parent
LOADER = Path(__file__).resolve().parent / 'agent_loader.py'
CHECK_FILE = ROOT / 'checks.d' / 'cis_kubernetes.py'  # built from the package by devtools.amalgamate
APISERVER = '/usr/local/bin/kube-apiserver'


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
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / 'datadog_checks' / 'cis_kubernetes').rglob('*.py')}
    assert modules <= names, modules - names  # every module of the package, subpackages included
    assert 'datadog_checks/__init__.py' not in names  # that file belongs to datadog-checks-base
    assert wheel.name.startswith('datadog_cis_kubernetes-')  # check name = package name minus datadog-, - to _


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
    [CHECK_FILE, *sorted((ROOT / 'datadog_checks' / 'cis_kubernetes').rglob('*.py'))],
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
