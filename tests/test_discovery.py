"""Rescans that look only at what changed, without missing what a full scan finds."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from datadog_checks.base import AgentCheck
from datadog_checks.cis_kubernetes import processes
from datadog_checks.cis_kubernetes.processes import FULL_SCAN_EVERY, ApiserverProcess, ProcessTable
from devtools import standin
from tests.conftest import needs_standins

SC = 'cis_kubernetes.apiserver.client_ca_file'
APISERVER = '/usr/local/bin/kube-apiserver'
NS_LAST_PID = '/proc/sys/kernel/ns_last_pid'


def can_choose_pids() -> bool:
    """ns_last_pid is writable by root inside its own PID namespace (./dev.sh test runs the suite in one)."""
    try:
        with open(NS_LAST_PID) as f:
            value = f.read()
        with open(NS_LAST_PID, 'w') as f:
            f.write(value)
        return True
    except OSError:
        return False


needs_pid_choice = pytest.mark.skipif(
    not can_choose_pids(), reason='needs root in its own PID namespace (ns_last_pid), as ./dev.sh test runs it'
)


def next_pid_will_be(pid: int) -> None:
    with open(NS_LAST_PID, 'w') as f:
        f.write(str(pid - 1))


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root to create a PID namespace')
def test_a_reused_pid_gets_a_new_proc_inode_on_this_kernel():
    """The kernel fact the incremental rescan relies on, checked in a PID namespace of its own."""
    script = textwrap.dedent(
        """
        import os, subprocess
        def inode(pid):
            return next(e.inode() for e in os.scandir('/proc') if e.name == str(pid))
        first = subprocess.Popen(['sleep', '30'])
        before = inode(first.pid)
        first.kill(); first.wait()
        with open('/proc/sys/kernel/ns_last_pid', 'w') as f:
            f.write(str(first.pid - 1))
        second = subprocess.Popen(['sleep', '30'])
        after = inode(second.pid)
        second.kill(); second.wait()
        print(first.pid == second.pid, before != after)
        """
    )
    result = subprocess.run(
        ['unshare', '--pid', '--fork', '--mount-proc', sys.executable, '-c', script], capture_output=True, text=True
    )
    assert result.stdout.split() == ['True', 'True'], result.stderr


# -- the table, on a procfs made of directories and links -----------------------------------------------------------


def fake_process(procfs, pid: int, exe: str) -> None:
    os.makedirs(f'{procfs}/{pid}', exist_ok=True)
    link = f'{procfs}/{pid}/exe'
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(exe, link)


@pytest.fixture
def fake_procfs(tmp_path, monkeypatch):
    procfs = str(tmp_path / 'proc')
    os.makedirs(procfs)
    looked_at: list[str] = []
    real_program = processes._program

    def program(proc_fd, pid):
        looked_at.append(pid)
        return real_program(proc_fd, pid)

    def apiserver(procfs_path, pid):  # identity itself is tested elsewhere; here, what is looked at and when
        return ApiserverProcess(pid=pid, create_time=0.0, name='kube-apiserver', args=())

    monkeypatch.setattr(processes, '_program', program)
    monkeypatch.setattr(processes, 'read_apiserver_process', apiserver)
    return procfs, looked_at


def test_rescan_looks_only_at_processes_it_has_not_seen(fake_procfs):
    procfs, looked_at = fake_procfs
    for pid in range(1, 201):
        fake_process(procfs, pid, '/usr/bin/sleep')
    table = ProcessTable()
    table.scan(procfs)
    assert len(looked_at) == 200
    looked_at.clear()
    fake_process(procfs, 500, APISERVER)
    scan = table.scan(procfs)
    assert looked_at == ['500'] and [p.pid for p in scan.apiservers] == [500]


def test_a_process_whose_proc_directory_changed_is_looked_at_again(fake_procfs):
    """A pid reused by a new process has a new /proc/<pid> inode (the kernel fact above): here, a new directory."""
    procfs, looked_at = fake_procfs
    fake_process(procfs, 7, '/usr/bin/sleep')
    table = ProcessTable()
    table.scan(procfs)
    os.unlink(f'{procfs}/7/exe')
    os.rmdir(f'{procfs}/7')
    os.makedirs(f'{procfs}/spare')  # keeps the old inode number from being handed out again at once
    fake_process(procfs, 7, APISERVER)
    looked_at.clear()
    assert [p.pid for p in table.scan(procfs).apiservers] == [7]
    assert looked_at == ['7']


def test_exec_wrappers_and_candidates_are_looked_at_at_every_scan(fake_procfs):
    procfs, looked_at = fake_procfs
    fake_process(procfs, 10, '/bin/sh')  # `sh -c "exec kube-apiserver ..."`: same pid, same directory after exec
    fake_process(procfs, 11, '/usr/bin/sleep')
    table = ProcessTable()
    table.scan(procfs)
    fake_process(procfs, 10, APISERVER)  # the exec
    looked_at.clear()
    assert [p.pid for p in table.scan(procfs).apiservers] == [10]
    assert looked_at == ['10']


def test_every_few_scans_everything_is_looked_at_again(fake_procfs):
    procfs, looked_at = fake_procfs
    for pid in (1, 2, 3):
        fake_process(procfs, pid, '/usr/bin/sleep')
    table = ProcessTable()
    counts = []
    for _ in range(2 * FULL_SCAN_EVERY + 1):
        looked_at.clear()
        table.scan(procfs)
        counts.append(len(looked_at))
    assert counts == ([3] + [0] * (FULL_SCAN_EVERY - 1)) * 2 + [3]


def test_a_process_that_exits_is_forgotten(fake_procfs):
    procfs, looked_at = fake_procfs
    fake_process(procfs, 5, '/usr/bin/sleep')
    table = ProcessTable()
    table.scan(procfs)
    assert table._quiet
    os.unlink(f'{procfs}/5/exe')
    os.rmdir(f'{procfs}/5')
    table.scan(procfs)
    assert table._quiet == {}


# -- in the check, with real processes ---------------------------------------------------------------------------------


@needs_standins
@needs_pid_choice
def test_an_apiserver_that_reuses_the_pid_of_a_seen_process_is_found_within_rescan_every_runs(
    make_check, dd_run_check, aggregator
):
    quiet = standin.start(['/usr/bin/idle-daemon'], program='idle-daemon')
    check = make_check({'rescan_every': 2})
    dd_run_check(check)  # the first, full scan: the idle daemon is seen and set aside
    assert aggregator.service_checks(SC) == []
    pid = quiet.pid
    quiet.stop()
    next_pid_will_be(pid)
    apiserver = standin.start([APISERVER, '--client-ca-file='])
    try:
        assert apiserver.pid == pid
        aggregator.reset()
        for _ in range(2):
            dd_run_check(check)
        assert [sc.status for sc in aggregator.service_checks(SC)] == [AgentCheck.CRITICAL]
    finally:
        apiserver.stop()
