from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import psutil
import pytest

from datadog_checks.base.stubs import datadog_agent as agent_stub
from datadog_checks.cis_kubernetes import CisKubernetesCheck
from devtools import standin
from tests import rtloader

STANDINS_OK, STANDINS_WHY = standin.can_start()
SEPARATE_ROOT_OK, SEPARATE_ROOT_WHY = standin.can_use_separate_root() if STANDINS_OK else (False, STANDINS_WHY)

needs_standins = pytest.mark.skipif(not STANDINS_OK, reason=STANDINS_WHY)
needs_separate_root = pytest.mark.skipif(not SEPARATE_ROOT_OK, reason=SEPARATE_ROOT_WHY)
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason='needs root: runs the check as another user')


@pytest.fixture(autouse=True)
def _restore_procfs():
    saved = psutil.PROCFS_PATH
    yield
    psutil.PROCFS_PATH = saved


@pytest.fixture
def make_check():
    def make(instance: dict | None = None) -> CisKubernetesCheck:
        check = CisKubernetesCheck('cis_kubernetes', {}, [dict(instance or {})])
        check.check_id = 'cis_kubernetes:test'
        return check

    return make


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix='cisk-test-')
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def apiservers():
    """Start stand-in processes with `apiservers(argv, ...)`; all are stopped after the test."""
    started: list[standin.StandIn] = []

    def start(argv, **kwargs) -> standin.StandIn:
        process = standin.start(argv, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


NOBODY = 65534


def as_unprivileged_user(action, before=None):
    """`action()`'s JSON-able result, computed in a child that dropped root for nobody, as the Agent runs (dd-agent).

    `before()` runs in the child first, still as root. The child only runs code already imported here.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            if before is not None:
                before()
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
            os.write(write_end, json.dumps({'result': action()}).encode())
        except BaseException as e:
            os.write(write_end, json.dumps({'error': f'{type(e).__name__}: {e}'}).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, 'rb') as f:
        answer = json.loads(f.read())
    if 'error' in answer:
        raise ChildProcessError(answer['error'])
    return answer['result']


DEBIAN_GOPATH = '/usr/share/gocode'  # where Debian's golang-*-dev packages put their sources, for GOPATH builds


def build_go_oracle(tmp_path_factory, source, package: str, debian_package: str) -> str:
    """The path of `source` built with Debian's Go in GOPATH mode against Debian's `package` (an import path); the
    test skips, naming the packages .ci/run installs, when Go or the package is missing."""
    if shutil.which('go') is None or not os.path.isdir(f'{DEBIAN_GOPATH}/src/{package}'):
        pytest.skip(f'needs Go and {package} (Debian: golang-go {debian_package}), as .ci/run installs')
    out = tmp_path_factory.mktemp('go-oracle')
    env = {**os.environ, 'GO111MODULE': 'off', 'GOPATH': DEBIAN_GOPATH, 'GOCACHE': str(out / 'cache')}
    subprocess.run(['go', 'build', '-o', str(out / 'oracle'), str(source)], check=True, env=env)
    return str(out / 'oracle')


def write(path: str, data: bytes, mode: int = 0o644) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)
    os.chmod(path, mode)
    return path


@pytest.fixture(autouse=True)
def _clean_agent_cache():
    agent_stub.reset()
    yield
    agent_stub.reset()


@pytest.fixture(autouse=True)
def strict_agent(monkeypatch):
    """Submissions checked as the Agent's rtloader checks them; what it would drop silently fails the test."""
    dropped = rtloader.install(monkeypatch)
    yield dropped
    assert not dropped, f'the Agent would silently drop: {dropped}'
