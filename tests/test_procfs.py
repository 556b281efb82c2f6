"""/proc/<pid>/stat read as proc(5) describes it, checked against the kernel's other files and psutil's reading."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from datadog_checks.cis_kubernetes.processes import ApiserverProcess, is_same_process_running
from datadog_checks.cis_kubernetes.procfs import process_stat

# comm may hold spaces and parentheses (prctl PR_SET_NAME, a write to /proc/<pid>/comm): it ends at the last ')'
ODD_NAMES = ['a) (b c', 'x)', ') S 1 2', 'plain', 'tab\there']


def child_named(name: str) -> subprocess.Popen:
    script = f'open("/proc/self/comm", "w").write({name!r}); print("ready", flush=True); import time; time.sleep(60)'
    child = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == 'ready\n'
    return child


@pytest.mark.parametrize('name', ODD_NAMES)
def test_process_stat_agrees_with_the_comm_file_and_psutil(name):
    child = child_named(name)
    try:
        deadline = time.monotonic() + 5  # after `ready` it still imports time before it sleeps
        while (stat := process_stat('/proc', child.pid)).state != 'S' and time.monotonic() < deadline:
            time.sleep(0.01)
        with open(f'/proc/{child.pid}/comm', 'rb') as f:
            assert stat.name == f.read().rstrip(b'\n').decode() == name
        process = psutil.Process(child.pid)
        assert stat.ppid == process.ppid() == os.getpid()
        assert stat.state == 'S' and process.status() == psutil.STATUS_SLEEPING
        # psutil: create_time = starttime / CLK_TCK + boot time
        assert stat.start_ticks / os.sysconf('SC_CLK_TCK') + psutil.boot_time() == pytest.approx(
            process.create_time(), abs=0.02
        )
    finally:
        child.kill()
        child.wait()


def test_the_same_process_is_running_until_it_is_a_zombie_or_gone():
    child = child_named('kube-apiserver')
    stat = process_stat('/proc', child.pid)
    known = ApiserverProcess(pid=child.pid, start_ticks=stat.start_ticks, name=stat.name, args=())
    assert is_same_process_running('/proc', known)
    assert not is_same_process_running('/proc', ApiserverProcess(child.pid, stat.start_ticks - 1, stat.name, ()))
    os.kill(child.pid, signal.SIGKILL)  # not reaped yet: a zombie
    deadline = time.monotonic() + 5
    while process_stat('/proc', child.pid).state != 'Z' and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not is_same_process_running('/proc', known)
    child.wait()
    assert not is_same_process_running('/proc', known)


@pytest.mark.parametrize('content', [b'', b'42', b'42 (name', b'42 (name) S 1', b'42 (a) S x ' + b'1 ' * 20])
def test_a_stat_file_not_as_proc5_describes_it_is_a_value_error(tmp_path, content):
    os.makedirs(tmp_path / '42')
    (tmp_path / '42' / 'stat').write_bytes(content)
    with pytest.raises(ValueError):
        process_stat(str(tmp_path), 42)
