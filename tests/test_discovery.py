"""Rescans that look only at what changed, without missing what a full scan finds."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from datadog_checks.base import AgentCheck
from datadog_checks.cis_kubernetes import process_table
from datadog_checks.cis_kubernetes.process_table import FULL_SCAN_EVERY, ProcessTable
from datadog_checks.cis_kubernetes.processes import ApiserverProcess
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
    real_read_exe = process_table._read_exe

    def read_exe(path, dir_fd):
        looked_at.append(path.split('/')[0])
        return real_read_exe(path, dir_fd=dir_fd)

    def apiserver(procfs_path, pid):  # identity itself is tested elsewhere; here, what is looked at and when
        return ApiserverProcess(pid=pid, start_ticks=0, name='kube-apiserver', args=())

    monkeypatch.setattr(process_table, '_read_exe', read_exe)
    monkeypatch.setattr(process_table, 'read_apiserver_process', apiserver)
    return procfs, looked_at


def scanned(procfs: str) -> ProcessTable:
    """A table past its first scan and the first listing after it: the first scan lists /proc without inodes (a
    third cheaper), so the first listing that compares them looks at every process once."""
    table = ProcessTable()
    table.scan(procfs)
    table.scan(procfs)
    return table


def test_the_first_listing_after_the_first_scan_looks_at_everything_once(fake_procfs):
    procfs, looked_at = fake_procfs
    for pid in range(1, 201):
        fake_process(procfs, pid, '/usr/bin/sleep')
    table = ProcessTable()
    counts = []
    for _ in range(3):
        looked_at.clear()
        table.scan(procfs)
        counts.append(len(looked_at))
    assert counts == [200, 200, 0]
    assert set(table._quiet.values()) == {os.stat(f'{procfs}/{pid}').st_ino for pid in range(1, 201)}


def test_rescan_looks_only_at_processes_it_has_not_seen(fake_procfs):
    procfs, looked_at = fake_procfs
    for pid in range(1, 201):
        fake_process(procfs, pid, '/usr/bin/sleep')
    table = scanned(procfs)
    looked_at.clear()
    fake_process(procfs, 500, APISERVER)
    scan = table.scan(procfs)
    assert looked_at == ['500'] and [p.pid for p in scan.apiservers] == [500]


def test_a_process_whose_proc_directory_changed_is_looked_at_again(fake_procfs):
    """A pid reused by a new process has a new /proc/<pid> inode (the kernel fact above): here, a new directory."""
    procfs, looked_at = fake_procfs
    fake_process(procfs, 7, '/usr/bin/sleep')
    table = scanned(procfs)
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
    table = scanned(procfs)
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
    assert counts == [3, 3] + [0] * (FULL_SCAN_EVERY - 2) + [3] + [0] * (FULL_SCAN_EVERY - 1) + [3]


def test_a_process_that_exits_is_forgotten(fake_procfs):
    procfs, looked_at = fake_procfs
    fake_process(procfs, 5, '/usr/bin/sleep')
    table = scanned(procfs)
    assert table._quiet
    os.unlink(f'{procfs}/5/exe')
    os.rmdir(f'{procfs}/5')
    table.scan(procfs)
    assert table._quiet == {}


# -- in the check, with real processes ---------------------------------------------------------------------------------


def counters_now() -> process_table.PidCounters:
    fd = os.open('/proc', os.O_RDONLY | os.O_DIRECTORY)
    try:
        return process_table.pid_counters(fd)
    finally:
        os.close(fd)


def count_listings(monkeypatch) -> list[str]:
    """The listings of /proc the table makes from now on, with inodes or without."""
    listings = []
    for name in ('_listing', '_pids'):
        real = getattr(process_table, name)
        monkeypatch.setattr(process_table, name, lambda fd, name=name, real=real: listings.append(name) or real(fd))
    return listings


@pytest.mark.parametrize(
    'before, now, pids',
    [
        ((100, 1000, 4194304), (105, 1007, 4194304), [101, 102, 103, 104, 105]),
        ((100, 1000, 4194304), (100, 1000, 4194304), []),
        ((4194302, 1000, 4194304), (301, 1004, 4194304), [4194303, *range(1, 302)]),  # wrapped
        ((100, 1000, 4194304), (105, 1000 + process_table.MAX_NEW_PIDS + 1, 4194304), None),  # too many forks
        ((100, 1000, 4194304), (105, 999, 4194304), None),  # the fork counter went back: not the same boot
        ((100, 1000, 1024), (105, 1007, 1024), None),  # pid_max too small to rule out a full cycle
        (None, (105, 1007, 4194304), None),
    ],
)
def test_pids_handed_out_since_the_last_scan(before, now, pids):
    before = before and process_table.PidCounters(*before)
    got = process_table.pids_handed_out(before, process_table.PidCounters(*now))
    assert (None if got is None else list(got)) == pids


@needs_standins
@pytest.mark.skipif(counters_now() is None, reason='/proc shows another PID namespace than this process')
def test_a_new_apiserver_is_found_without_listing_proc(make_check, dd_run_check, aggregator, monkeypatch):
    check = make_check({'rescan_every': 1})
    dd_run_check(check)  # the first, full scan
    dd_run_check(check)
    listings = count_listings(monkeypatch)
    apiserver = standin.start([APISERVER, '--client-ca-file='])
    try:
        aggregator.reset()
        dd_run_check(check)
        assert [sc.status for sc in aggregator.service_checks(SC)] == [AgentCheck.CRITICAL]
        assert listings == []  # found among the pids handed out since the last scan
    finally:
        apiserver.stop()


@needs_standins
@needs_pid_choice
def test_an_apiserver_that_reuses_a_pid_after_the_pids_wrap_is_found_at_the_next_rescan(
    make_check, dd_run_check, aggregator, monkeypatch
):
    pid_max = counters_now().pid_max
    next_pid_will_be(pid_max - 1)  # at the top, so that the pids wrap between two scans as they do on a busy node
    quiet = standin.start(['/usr/bin/idle-daemon'], program='idle-daemon')
    check = make_check({'rescan_every': 1})
    dd_run_check(check)  # the first, full scan
    dd_run_check(check)
    listings = count_listings(monkeypatch)
    apiserver = standin.start([APISERVER, '--client-ca-file='])
    try:
        assert apiserver.pid < quiet.pid  # handed out after the wrap
        aggregator.reset()
        dd_run_check(check)
        assert [sc.status for sc in aggregator.service_checks(SC)] == [AgentCheck.CRITICAL]
        assert listings == []  # among the pids handed out since, across the wrap
    finally:
        apiserver.stop()
        quiet.stop()


@needs_standins
@needs_pid_choice
def test_a_pid_chosen_by_a_privileged_process_is_found_at_the_next_full_pass(make_check, dd_run_check, aggregator):
    """ns_last_pid (or clone3's set_tid), as checkpoint/restore uses it, can hand out a pid the counters do not show:
    the full pass every FULL_SCAN_EVERY scans finds it."""
    quiet = standin.start(['/usr/bin/idle-daemon'], program='idle-daemon')
    check = make_check({'rescan_every': 1})
    dd_run_check(check)  # the first, full scan: the idle daemon is seen and set aside
    assert aggregator.service_checks(SC) == []
    pid = quiet.pid
    quiet.stop()
    next_pid_will_be(pid)
    apiserver = standin.start([APISERVER, '--client-ca-file='])
    try:
        assert apiserver.pid == pid
        aggregator.reset()
        for _ in range(FULL_SCAN_EVERY):
            dd_run_check(check)
        assert AgentCheck.CRITICAL in [sc.status for sc in aggregator.service_checks(SC)]
    finally:
        apiserver.stop()
