"""Discovery that real process lifecycles cannot fool: threads, exec in place, a pid counter moved back, pid reuse.

Every scan lists /proc and reads each listed process's executable (process_table.py); these tests start real
processes between two scans, as an apiserver's restart does, and count what the check then sees and does.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from datadog_checks.base import AgentCheck
from datadog_checks.base.stubs import datadog_agent as agent_stub
from datadog_checks.cis_kubernetes import check as check_module
from datadog_checks.cis_kubernetes.process_table import scan_processes
from devtools import standin
from tests.conftest import as_unprivileged_user, needs_root, needs_separate_root, needs_standins

SC = 'cis_kubernetes.apiserver.client_ca_file'
PROCESSES = 'cis_kubernetes.apiserver.processes'
APISERVER = '/usr/local/bin/kube-apiserver'
NS_LAST_PID = '/proc/sys/kernel/ns_last_pid'
THREADED_SOURCE = Path(__file__).parent / 'go' / 'threaded.go'
THREADS = 9  # at least: eight goroutines locked to threads of their own, and main's


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


def statuses(aggregator) -> list[int]:
    return [sc.status for sc in aggregator.service_checks(SC)]


# -- threads: /proc/<tid> resolves, /proc never lists it -----------------------------------------------------------


@pytest.fixture(scope='module')
def threaded_program(tmp_path_factory) -> str:
    """A Go program with many threads, built as `kube-apiserver`."""
    if shutil.which('go') is None:
        pytest.skip('needs Go (Debian: golang-go), as .ci/run installs')
    out = tmp_path_factory.mktemp('threaded')
    env = {
        **os.environ,
        'GO111MODULE': 'off',
        'CGO_ENABLED': '0',
        'GOTOOLCHAIN': 'local',
        'GOPATH': str(out / 'gopath'),
        'GOCACHE': str(out / 'cache'),
    }
    program = out / 'kube-apiserver'
    subprocess.run(['go', 'build', '-o', str(program), str(THREADED_SOURCE)], check=True, env=env)
    os.chmod(out, 0o755)
    return str(program)


def start_threaded(program: str, argv: list[str]) -> subprocess.Popen:
    process = subprocess.Popen(argv, executable=program, stdout=subprocess.PIPE)
    assert process.stdout.readline() == b'ready\n'
    deadline = time.monotonic() + 30
    while len(os.listdir(f'/proc/{process.pid}/task')) < THREADS:  # the runtime starts them as the goroutines run
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f'the Go program started fewer than {THREADS} threads')
        time.sleep(0.01)
    return process


@needs_standins  # the check's stand-in machinery works here: ptrace and /proc are as a node's
def test_a_threaded_apiserver_started_between_two_scans_is_counted_once_and_probed_once(
    threaded_program, make_check, dd_run_check, aggregator, monkeypatch
):
    """Before: the scans after the first looked at every pid handed out since the last one, threads included, and
    judged and probed each thread of a Go apiserver as an apiserver of its own."""
    probed = []
    real_probe = check_module.probe_apiserver

    def probe(procfs, process, **kwargs):
        probed.append(process.pid)
        return real_probe(procfs, process, **kwargs)

    monkeypatch.setattr(check_module, 'probe_apiserver', probe)
    check = make_check({'rescan_every': 1})
    dd_run_check(check)
    dd_run_check(check)  # two scans before it starts, as an apiserver restarting after the Agent
    apiserver = start_threaded(
        threaded_program, [APISERVER, '--etcd-servers=https://127.0.0.1:2379', '--client-ca-file=']
    )
    try:
        aggregator.reset()
        dd_run_check(check)
        assert len(os.listdir(f'/proc/{apiserver.pid}/task')) >= THREADS
        assert [m.value for m in aggregator.metrics(PROCESSES)] == [1]
        assert probed == [apiserver.pid]
        (service_check,) = aggregator.service_checks(SC)
        assert service_check.status == AgentCheck.CRITICAL and 'more apiserver' not in service_check.message
    finally:
        apiserver.kill()
        apiserver.wait()
        apiserver.stdout.close()


# -- exec in place: the same pid and /proc/<pid>, another program -------------------------------------------------

# A launcher that execs kube-apiserver in the pid it has, as runc init, crun, systemd's forked child and the snap
# chain do. Traced by the test, it stops right after the exec, before the stand-in's first instruction (devtools/
# standin.py says why).
LAUNCHER = textwrap.dedent(
    """
    import ctypes, os, sys
    libc = ctypes.CDLL(None)
    libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    os.read(0, 1)  # until the test says so
    libc.ptrace(0, 0, None, None)  # PTRACE_TRACEME
    os.execv(sys.argv[1], sys.argv[2:])
    """
)


def start_launcher(directory: Path, argv: list[str]) -> tuple[int, int]:
    """(pid, the fd that tells it to exec) of a process named `runc` that will exec `argv` as kube-apiserver."""
    os.symlink(os.path.realpath(sys.executable), directory / 'runc')
    shutil.copy(shutil.which('sleep') or '/bin/sleep', directory / 'kube-apiserver')
    directory.chmod(0o755)
    read_end, write_end = os.pipe()
    launcher = [str(directory / 'runc'), '-S', '-c', LAUNCHER, str(directory / 'kube-apiserver'), *argv]
    try:
        pid = os.posix_spawn(launcher[0], launcher, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0)])
    finally:
        os.close(read_end)
    return pid, write_end


def let_it_exec(pid: int, tell: int) -> None:
    os.write(tell, b'x')
    os.close(tell)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSTOPPED(status), status  # stopped at the exec
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.ptrace(standin.PTRACE_DETACH, pid, None, ctypes.c_void_p(signal.SIGSTOP)) == 0


def test_a_launcher_seen_by_a_scan_that_execs_kube_apiserver_in_place_is_judged_within_rescan_every_runs(
    tmp_path, make_check, dd_run_check, aggregator
):
    """Before: a process seen as anything but a candidate or a known wrapper was set aside until the full pass every
    tenth scan (25 minutes at the default interval)."""
    rescan_every = 3
    pid, tell = start_launcher(tmp_path, [APISERVER, '--client-ca-file='])
    try:
        check = make_check({'rescan_every': rescan_every})
        dd_run_check(check)  # the scan sees the launcher
        assert statuses(aggregator) == []
        inode = os.stat(f'/proc/{pid}').st_ino
        let_it_exec(pid, tell)
        assert os.readlink(f'/proc/{pid}/exe') == str(tmp_path / 'kube-apiserver')
        assert os.stat(f'/proc/{pid}').st_ino == inode  # the same process directory: only its executable changed
        for _ in range(rescan_every):
            dd_run_check(check)
        assert statuses(aggregator) == [AgentCheck.CRITICAL]
    finally:
        standin.StandIn(pid=pid, argv=()).stop()


# -- the kernel's pid counter moved back, pids reused -------------------------------------------------------------


def count_proc_lookups(monkeypatch) -> list[str]:
    """Every readlink, stat and open from now on: a scan's cost, counted in calls rather than timed."""
    calls = []
    for name in ('readlink', 'stat', 'open'):
        real = getattr(os, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(os, name, counted)
    return calls


@needs_standins
@needs_pid_choice
def test_a_pid_counter_moved_back_costs_one_ordinary_scan(make_check, dd_run_check, aggregator, monkeypatch):
    """Checkpoint/restore tools write ns_last_pid. Before: a counter moved back read as the pids wrapping all the way
    round, and the next scan looked up every pid up to pid_max (15.8 s and 179 MB on a node with pid_max 4194304)."""
    next_pid_will_be(20000)
    standin.start(['/usr/bin/idle-daemon'], program='idle-daemon').stop()
    check = make_check({'rescan_every': 1})
    dd_run_check(check)
    dd_run_check(check)
    next_pid_will_be(1000)  # moved back, as a restore does
    apiserver = standin.start([APISERVER, '--client-ca-file='])
    try:
        assert apiserver.pid < 20000
        listed = sum(name.isdigit() for name in os.listdir('/proc'))
        aggregator.reset()
        calls = count_proc_lookups(monkeypatch)
        dd_run_check(check)
        monkeypatch.undo()
        assert statuses(aggregator) == [AgentCheck.CRITICAL]
        assert len(calls) <= 3 * listed + 200, f'{len(calls)} lookups for {listed} processes'
    finally:
        apiserver.stop()


@needs_standins
@needs_pid_choice
def test_an_apiserver_that_reuses_the_pid_of_a_process_seen_before_is_found_at_the_next_scan(
    make_check, dd_run_check, aggregator
):
    quiet = standin.start(['/usr/bin/idle-daemon'], program='idle-daemon')
    check = make_check({'rescan_every': 1})
    dd_run_check(check)  # the scan sees the idle daemon
    assert statuses(aggregator) == []
    pid = quiet.pid
    quiet.stop()
    next_pid_will_be(pid)
    apiserver = standin.start([APISERVER, '--client-ca-file='])
    try:
        assert apiserver.pid == pid
        dd_run_check(check)
        assert statuses(aggregator) == [AgentCheck.CRITICAL]
    finally:
        apiserver.stop()


# -- names: a link, a renamed build, a hidden executable ------------------------------------------------------------


@needs_standins
@needs_root
def test_kube_apiserver_exec_d_through_a_link_to_another_name_is_found_by_root_and_unprivileged_agents():
    """comm is the link's name, /proc/<pid>/exe the target's: before, a root Agent judged the process by its
    executable's name alone and never looked closer, while an unprivileged one (no readlink) read its comm."""
    apiserver = standin.start([APISERVER, '--client-ca-file='], program='kube-apiserver', exe='apiserver-v1.31.2')
    try:
        as_root = [p.pid for p in scan_processes('/proc').apiservers]
        unprivileged = as_unprivileged_user(lambda: [p.pid for p in scan_processes('/proc').apiservers])
    finally:
        apiserver.stop()
    assert as_root == unprivileged == [apiserver.pid]


@needs_separate_root  # stand-ins in one root share one executable file
def test_processes_of_a_multi_call_executable_are_each_judged_by_their_own_name(tmp_path):
    """One executable under several names (busybox, hyperkube's links): the first process names it otherwise than its
    file, so every process of it is named by its own comm."""
    other = standin.start(['sh', '-c', 'true'], program='sh', exe='multicall', root=str(tmp_path))
    apiserver = standin.start(
        [APISERVER, '--client-ca-file='], program='kube-apiserver', exe='multicall', root=str(tmp_path)
    )
    try:
        found = [p.pid for p in scan_processes('/proc').apiservers]
    finally:
        apiserver.stop()
        other.stop()
    assert found == [apiserver.pid]


@needs_standins
def test_a_renamed_build_is_judged_and_the_healthcheck_sidecar_beside_it_is_not(make_check, dd_run_check, aggregator):
    """kind's documented hot swap of /usr/local/bin/kube-apiserver-custom (comm `kube-apiserver-`) beside kops's
    kube-apiserver-healthcheck (comm `kube-apiserver-` too): what each runs as, its flags, tells them apart."""
    custom = standin.start(
        ['/usr/local/bin/kube-apiserver-custom', '--etcd-servers=https://127.0.0.1:2379', '--client-ca-file='],
        program='kube-apiserver-custom',
    )
    sidecar = standin.start(
        ['/usr/bin/kube-apiserver-healthcheck', '--ca-cert=/secrets/ca.crt', '--client-cert=/secrets/client.crt'],
        program='kube-apiserver-healthcheck',
    )
    try:
        check = make_check()
        dd_run_check(check)
        found = [p.pid for p in scan_processes('/proc').apiservers]
    finally:
        custom.stop()
        sidecar.stop()
    assert found == [custom.pid]
    assert [m.value for m in aggregator.metrics(PROCESSES)] == [1]
    assert statuses(aggregator) == [AgentCheck.CRITICAL]


# -- what is read of a candidate, and through what ------------------------------------------------------------------


@needs_standins
def test_a_candidates_name_command_line_and_parent_are_read_through_psutil_at_the_agents_procfs_path(
    make_check, dd_run_check, aggregator, monkeypatch, tmp_path
):
    """The Agent's procfs_path (here a link to /proc, as /host/proc is a mount of the host's) is where psutil reads."""
    procfs = tmp_path / 'host-proc'
    procfs.symlink_to('/proc')
    agent_stub._config['procfs_path'] = str(procfs)
    read = []
    real_cmdline = psutil.Process.cmdline

    def cmdline(self):
        read.append((self.pid, psutil.PROCFS_PATH))
        return real_cmdline(self)

    monkeypatch.setattr(psutil.Process, 'cmdline', cmdline)
    apiserver = standin.start([APISERVER, '--client-ca-file='])
    try:
        dd_run_check(make_check())
    finally:
        apiserver.stop()
    assert (apiserver.pid, str(procfs)) in read
    assert statuses(aggregator) == [AgentCheck.CRITICAL]
