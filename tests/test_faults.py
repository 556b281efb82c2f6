"""Fault injection with real processes and files.

Each case asserts: the run ends within a bound, the verdict is the right one or an UNKNOWN with a clear reason,
never a false PASS, never an exception out of check(), and the next run after the fault clears recovers.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import threading
import time

import pytest

from datadog_checks.base import AgentCheck
from datadog_checks.base.stubs import datadog_agent as agent_stub
from devtools import certs
from tests.conftest import as_unprivileged_user, needs_root, needs_separate_root, needs_standins, write

pytestmark = needs_standins

SC = 'cis_kubernetes.apiserver.client_ca_file'
APISERVER = '/usr/local/bin/kube-apiserver'
RUN_BOUND = 2.0  # seconds: far above a normal run, far below anything that stalls the Agent's collector
VALID = certs.valid_ca()
OK, WARNING, CRITICAL, UNKNOWN = AgentCheck.OK, AgentCheck.WARNING, AgentCheck.CRITICAL, AgentCheck.UNKNOWN


def timed_run(dd_run_check, check) -> float:
    started = time.monotonic()
    dd_run_check(check)  # raises if an exception escaped check()
    elapsed = time.monotonic() - started
    assert elapsed < RUN_BOUND, f'run took {elapsed:.2f}s'
    return elapsed


def statuses(aggregator) -> list[tuple[int, str]]:
    return [(sc.status, sc.message) for sc in aggregator.service_checks(SC)]


def clear_to_valid(path: str) -> None:
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.remove(path)
    write(path, VALID)


def fifo(path):
    os.mkfifo(path)


def char_device(path):
    os.symlink('/dev/zero', path)  # the stand-in's root is /: the link reaches the real character device


def directory(path):
    os.mkdir(path)


def unix_socket(path):
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(path)
    sock.close()


def sparse_terabyte(path):
    with open(path, 'wb') as f:
        f.truncate(1 << 40)


def symlink_loop(path):
    os.symlink(os.path.basename(path) + '.other', path)
    os.symlink(os.path.basename(path), path + '.other')


def content(data: bytes):
    def make(path):
        write(path, data)

    return make


TRUNCATED = certs.valid_ca()[:400]
GARBAGE_AROUND = b'\x00\xffjunk before\n' + certs.valid_ca() + b'\n\x89trailing junk\x00'
BEGIN_LINES = b'-----BEGIN CERTIFICATE-----\n' * ((4 << 20) // 28)
THOUSANDS_OF_LEAVES = certs.pem(*(certs.certificate(f'leaf-{i}', is_ca=False) for i in range(3000)))

FAULTS = {
    'fifo': (fifo, {CRITICAL}, 'FIFO'),
    'character device': (char_device, {CRITICAL}, 'character device'),
    'directory': (directory, {CRITICAL}, 'directory'),
    'socket': (unix_socket, {CRITICAL}, 'socket'),
    'sparse 1 TB file': (sparse_terabyte, {UNKNOWN}, 'max_ca_file_size'),
    'symlink loop': (symlink_loop, {CRITICAL}, 'symbolic links'),
    'missing': (lambda path: None, {CRITICAL}, 'does not exist'),
    'garbage only': (content(b'\x00\x01garbage\xff' * 100), {CRITICAL}, 'no PEM certificate'),
    'DER instead of PEM': (content(certs.der(certs.certificate())), {CRITICAL}, 'no PEM certificate'),
    'private key': (content(certs.private_key_pem()), {CRITICAL}, 'no PEM certificate'),
    'truncated certificate': (content(TRUNCATED), {CRITICAL}, 'no PEM certificate'),
    'corrupt certificate block': (
        content(b'-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n'),
        {CRITICAL},
        'do not parse',
    ),
    'thousands of certificates, none a CA': (content(THOUSANDS_OF_LEAVES), {CRITICAL}, 'none of them a CA'),
    # Go's pem.Decode rescans the rest of the file after each of these; the check must not (max_ca_file_size: 4 MiB)
    '4 MiB of BEGIN lines': (content(BEGIN_LINES), {CRITICAL}, 'no PEM certificate'),
}


@pytest.mark.parametrize('fault', FAULTS)
def test_fault_in_the_ca_file_gives_the_right_verdict_and_clears(
    fault, make_check, dd_run_check, aggregator, apiservers, workdir
):
    make_fault, expected, words = FAULTS[fault]
    path = f'{workdir}/pki/ca.crt'
    os.makedirs(os.path.dirname(path))
    make_fault(path)
    apiservers([APISERVER, f'--client-ca-file={path}'])
    check = make_check()
    timed_run(dd_run_check, check)
    ((status, message),) = statuses(aggregator)
    assert status in expected, message
    assert words in message
    aggregator.reset()
    clear_to_valid(path)
    timed_run(dd_run_check, check)
    assert statuses(aggregator) == [(OK, '')]


@pytest.mark.parametrize(
    'data',
    [
        pytest.param(GARBAGE_AROUND, id='garbage around PEM blocks'),
        pytest.param(certs.pem(*(certs.certificate(f'ca-{i}') for i in range(3000))), id='3,000 CA certificates'),
    ],
)
def test_files_the_apiserver_can_use_pass_within_the_bound(
    data, make_check, dd_run_check, aggregator, apiservers, workdir
):
    ca = write(f'{workdir}/ca.crt', data)
    apiservers([APISERVER, f'--client-ca-file={ca}'])
    timed_run(dd_run_check, make_check())
    assert statuses(aggregator) == [(OK, '')]


def test_non_utf8_ca_path(make_check, dd_run_check, aggregator, apiservers, workdir):
    path = os.path.join(workdir, os.fsdecode(b'pki-\xff\xfe'), 'ca.crt')
    apiservers([APISERVER, f'--client-ca-file={path}'])
    check = make_check()
    timed_run(dd_run_check, check)
    ((status, message),) = statuses(aggregator)
    assert status == CRITICAL, message  # the true verdict, through the strict (rtloader) stub
    shown = os.path.join(workdir, 'pki-\\xff\\xfe', 'ca.crt')  # escaped as Go's %q shows it in the apiserver's logs
    assert shown in message
    assert [m.value for m in aggregator.metrics('cis_kubernetes.control.compliant')] == [0]
    (event,) = aggregator.events
    assert shown in event['msg_text']
    aggregator.reset()
    write(path, VALID)
    timed_run(dd_run_check, check)
    assert statuses(aggregator) == [(OK, '')]
    (days,) = aggregator.metrics('cis_kubernetes.apiserver.client_ca.days_left')
    assert f'client_ca_file:{shown}' in days.tags


def test_file_replaced_and_truncated_while_being_read(make_check, dd_run_check, aggregator, apiservers, workdir):
    """A writer rewrites the file in place (truncate, then write) and by rename as fast as it can while the check
    runs: every run ends, and a valid verdict is only ever given for bytes that hold a valid CA."""
    path = write(f'{workdir}/ca.crt', VALID)
    apiservers([APISERVER, f'--client-ca-file={path}'])
    check = make_check()
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            if i % 2:
                with open(path, 'r+b') as f:
                    f.truncate(0)
                    f.write(VALID)
            else:
                write(path + '.new', VALID)
                os.replace(path + '.new', path)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        for _ in range(300):
            timed_run(dd_run_check, check)
    finally:
        stop.set()
        thread.join()
    seen = {status for status, _ in statuses(aggregator)}
    assert seen <= {OK, CRITICAL, UNKNOWN}
    aggregator.reset()
    timed_run(dd_run_check, check)
    assert statuses(aggregator) == [(OK, '')]


# -- the process ------------------------------------------------------------------------------------------------


def fake_procfs(workdir: str, pids: list[int]) -> str:
    """A procfs_path listing `pids` (links into /proc), as a host /proc mount would, plus what psutil reads."""
    procfs = f'{workdir}/proc'
    os.makedirs(procfs)
    for name in ('stat', 'self', '1'):
        os.symlink(f'/proc/{name}', f'{procfs}/{name}')
    for pid in pids:
        os.symlink(f'/proc/{pid}', f'{procfs}/{pid}')
    return procfs


def test_process_that_exits_between_listing_and_reading_is_skipped(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    ca = write(f'{workdir}/ca.crt', VALID)
    gone = apiservers([APISERVER, '--client-ca-file='])
    alive = apiservers([APISERVER, f'--client-ca-file={ca}'])
    agent_stub._config['procfs_path'] = fake_procfs(workdir, [gone.pid, alive.pid])
    gone.stop()  # still listed by procfs_path, gone when read
    timed_run(dd_run_check, make_check())
    assert statuses(aggregator) == [(OK, '')]
    assert [m.value for m in aggregator.metrics('cis_kubernetes.apiserver.processes')] == [1]


def process_state(pid: int) -> str:
    with open(f'/proc/{pid}/stat') as f:
        return f.read().rsplit(') ', 1)[1][0]


def test_zombie_apiserver_is_not_judged_and_its_successor_is(make_check, dd_run_check, aggregator, apiservers, workdir):
    ca = write(f'{workdir}/ca.crt', VALID)
    first = apiservers([APISERVER, f'--client-ca-file={ca}'])
    check = make_check()
    timed_run(dd_run_check, check)
    assert statuses(aggregator) == [(OK, '')]
    os.kill(first.pid, signal.SIGKILL)  # not reaped: a zombie that keeps its name
    deadline = time.monotonic() + 5
    while process_state(first.pid) != 'Z' and time.monotonic() < deadline:
        time.sleep(0.01)
    aggregator.reset()
    timed_run(dd_run_check, check)
    assert statuses(aggregator) == []
    assert [m.value for m in aggregator.metrics('cis_kubernetes.apiserver.processes')] == [0]
    apiservers([APISERVER, '--client-ca-file='])
    aggregator.reset()
    timed_run(dd_run_check, check)
    assert statuses(aggregator)[0][0] == CRITICAL


def run_as_nobody(make_check, procfs_setup=None) -> dict:
    """Run the check once as an unprivileged user (as dd-agent), in a child; returns what it submitted."""
    from datadog_checks.base.stubs import aggregator

    def setup():
        if procfs_setup is not None:
            agent_stub._config['procfs_path'] = procfs_setup()
        aggregator.reset()

    def run():
        started = time.monotonic()
        error = make_check().run()
        return {
            'error': error,
            'seconds': time.monotonic() - started,
            'statuses': [[s.status, s.message] for s in aggregator.service_checks(SC)],
            'compliant': [m.value for m in aggregator.metrics('cis_kubernetes.control.compliant')],
            'events': [{k: e[k] for k in ('alert_type', 'msg_title', 'tags')} for e in aggregator.events],
        }

    result = as_unprivileged_user(run, before=setup)
    assert result['seconds'] < RUN_BOUND
    return result


@needs_root
def test_unprivileged_agent_gets_the_documented_warning_not_a_false_fail(make_check, apiservers, workdir):
    ca = write(f'{workdir}/pki/ca.crt', VALID, mode=0o600)
    apiservers([APISERVER, f'--client-ca-file={ca}'])
    result = run_as_nobody(make_check)
    assert result['error'] == ''
    ((status, message),) = result['statuses']
    assert status == WARNING and 'cannot read' in message
    # The flag was verified, the file was not: no compliance is claimed, and the event says so.
    assert message.startswith('WARNING: not verified') and 'was not verified' in message
    assert result['compliant'] == []
    (event,) = result['events']
    assert event['alert_type'] == 'warning' and 'not verified' in event['msg_title']
    assert 'compliance_status:not_verified' in event['tags']


@needs_root
def test_unprivileged_agent_still_fails_an_apiserver_without_the_flag(make_check, apiservers):
    apiservers([APISERVER, '--client-ca-file='])
    result = run_as_nobody(make_check)
    assert [status for status, _ in result['statuses']] == [CRITICAL]


CLONE_NEWNS, MS_REC, MS_PRIVATE = 0x00020000, 16384, 1 << 18


def hidepid_procfs(target: str):
    """In the child: a private mount namespace with a procfs mounted hidepid=2 at `target`."""

    def setup() -> str:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) != 0 or libc.mount(None, b'/', None, MS_REC | MS_PRIVATE, None) != 0:
            raise OSError('mount namespace refused')
        if libc.mount(b'proc', target.encode(), b'proc', 0, b'hidepid=2') != 0:
            raise OSError(ctypes.get_errno(), 'mounting proc refused')
        return target

    return setup


@needs_root
def test_proc_mounted_with_hidepid_is_unknown_with_the_reason(make_check, apiservers, workdir):
    apiservers([APISERVER, '--client-ca-file='])
    target = f'{workdir}/hidden-proc'
    os.makedirs(target)
    try:
        result = run_as_nobody(make_check, hidepid_procfs(target))
    except ChildProcessError as e:
        if 'refused' not in str(e):
            raise
        pytest.skip(f'this machine refuses a private mount of proc: {e}')
    assert result['error'] == ''
    ((status, message),) = result['statuses']
    assert status == UNKNOWN and 'hidepid' in message


@needs_separate_root
@pytest.mark.parametrize('link', ['absolute', 'dot-dot'])
def test_symlink_out_of_the_apiservers_root_fails_and_clears(
    link, make_check, dd_run_check, aggregator, apiservers, workdir
):
    agent_side = write(f'{workdir}/agent/ca.crt', VALID)
    root = f'{workdir}/apiserver-root'
    os.makedirs(f'{root}/pki')
    os.symlink(agent_side if link == 'absolute' else '../../../..' + agent_side, f'{root}/pki/ca.crt')
    apiservers([APISERVER, '--client-ca-file=/pki/ca.crt'], root=root)
    check = make_check()
    timed_run(dd_run_check, check)
    assert statuses(aggregator)[0][0] == CRITICAL
    os.remove(f'{root}/pki/ca.crt')
    write(f'{root}/pki/ca.crt', VALID)
    aggregator.reset()
    timed_run(dd_run_check, check)
    assert statuses(aggregator) == [(OK, '')]


@needs_separate_root
def test_unprivileged_agent_cannot_read_k3s_configuration_and_says_so(make_check, apiservers, workdir):
    root = f'{workdir}/k3s-root'
    write(f'{root}/etc/rancher/k3s/config.yaml', b'kube-apiserver-arg:\n  - client-ca-file=\n', mode=0o600)
    write(f'{root}/var/lib/rancher/k3s/server/tls/client-ca.crt', VALID, mode=0o600)
    apiservers(['/usr/local/bin/k3s server', '', '', ''], program='k3s', root=root)
    result = run_as_nobody(make_check)
    ((status, message),) = result['statuses']
    assert status == UNKNOWN  # not a WARNING that passes: the override that empties the flag is unreadable
    assert 'may not read its configuration' in message and 'root' in message
    assert result['compliant'] == []
