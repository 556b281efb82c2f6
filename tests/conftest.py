from __future__ import annotations

import os
import shutil
import tempfile

import psutil
import pytest

from datadog_checks.base.stubs import datadog_agent as agent_stub
from datadog_checks.cis_kubernetes import CisKubernetesCheck
from devtools import standin

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
