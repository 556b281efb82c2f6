"""On the wire, against a real TLS server that serves as kube-apiserver does (tests/wire/apiserver_standin.go).

The Go server is built from Debian's Go (standard library only; .ci/run installs golang-go) under the program name
kube-apiserver and run with the apiserver's flags, so the check finds it, reads its flags and its sockets as it does
a real apiserver's. Each server writes its failed TLS handshakes to a log (as kube-apiserver's http.Server ErrorLog
does): every test ends with no failed handshake of its own unless it says otherwise. Only the connections the test's
own process made count (their client ports are recorded as they connect): a probe from anything else on the machine
cannot fail a test, even where the suite does not run in a network namespace of its own.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from datadog_checks.base import AgentCheck
from datadog_checks.cis_kubernetes import check as check_module
from datadog_checks.cis_kubernetes.listeners import diag_listening_sockets, find_listener, listening_sockets
from datadog_checks.cis_kubernetes.processes import read_apiserver_process
from datadog_checks.cis_kubernetes.wire import read_client_ca_names
from datadog_checks.cis_kubernetes.wire_names import display_name, pem_certificate_subjects
from devtools import certs, wire_server
from tests.conftest import write

SC = 'cis_kubernetes.apiserver.client_ca_file'
WIRE_METRIC = 'cis_kubernetes.apiserver.wire.verified'
EVERY_RUN = {'wire_probe_interval': 0}


@pytest.fixture(scope='module')
def go_apiserver(tmp_path_factory) -> str:
    binary = wire_server.build(str(tmp_path_factory.mktemp('wire-go')))
    if binary is None:
        pytest.skip('needs Go (Debian: golang-go), as .ci/run installs')
    return binary


HANDSHAKE_ERROR_CLIENT = re.compile(r'from \S+:(\d+): ')  # net/http: "http: TLS handshake error from <addr>: <err>"


class Server:
    def __init__(self, process: subprocess.Popen, port: int, handshake_log: str, own_ports: set[int]):
        self.process, self.port, self.handshake_log, self.own_ports = process, port, handshake_log, own_ports
        self.pid = process.pid

    def handshake_errors(self) -> list[str]:
        """The failed handshakes of connections this test's process made (a line naming no client counts too)."""
        if not os.path.exists(self.handshake_log):
            return []
        lines = Path(self.handshake_log).read_text().splitlines()
        clients = [HANDSHAKE_ERROR_CLIENT.search(line) for line in lines]
        return [line for line, c in zip(lines, clients, strict=True) if c is None or int(c[1]) in self.own_ports]


@pytest.fixture
def pki(workdir):
    """A serving certificate and key (ECDSA by default) and a client CA bundle for the server."""
    write(f'{workdir}/serving.crt', certs.pem(certs.certificate('kube-apiserver', is_ca=False)))
    write(f'{workdir}/serving.key', certs.private_key_pem())
    return workdir


@pytest.fixture
def own_ports(monkeypatch) -> set[int]:
    """The client ports of every TCP connection this process opens with socket.create_connection (the probe's way)."""
    ports: set[int] = set()
    connect = socket.create_connection

    def recording(*args, **kwargs):
        sock = connect(*args, **kwargs)
        ports.add(sock.getsockname()[1])
        return sock

    monkeypatch.setattr(socket, 'create_connection', recording)
    return ports


@pytest.fixture
def serve(go_apiserver, pki, own_ports):
    """serve(*flags, prefix=()) starts the Go apiserver on a free loopback port; all stop after the test, each with
    zero handshake errors from the test's own connections unless the test took them (`expected_errors`)."""
    started: list[tuple[Server, int]] = []

    def start(*flags: str, prefix=(), bind='127.0.0.1', expected_errors: int = 0, env=None) -> Server:
        port = wire_server.free_port()
        log = f'{pki}/handshakes-{port}.log'
        argv = [
            *prefix,
            go_apiserver,
            f'--secure-port={port}',
            f'--bind-address={bind}',
            f'--tls-cert-file={pki}/serving.crt',
            f'--tls-private-key-file={pki}/serving.key',
            f'--handshake-log={log}',
            *flags,
        ]
        process = wire_server.start(argv, env)
        server = Server(process, port, log, own_ports)
        started.append((server, expected_errors))
        return server

    yield start
    time.sleep(0.1)  # the server logs a failed handshake after the client has gone: give a late error time to show
    for server, expected in started:
        deadline = time.monotonic() + 2
        while len(server.handshake_errors()) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        server.process.kill()
        server.process.wait()
    for server, expected in started:
        assert len(server.handshake_errors()) == expected, server.handshake_errors()


def run(make_check, dd_run_check, aggregator, instance=None, check=None):
    aggregator.reset()
    check = check or make_check({**EVERY_RUN, **(instance or {})})
    dd_run_check(check)
    service_checks = aggregator.service_checks(SC)
    assert len(service_checks) == 1, service_checks
    return check, service_checks[0]


def wire_gauge(aggregator):
    metrics = aggregator.metrics(WIRE_METRIC)
    assert len(metrics) == 1, metrics
    tags = dict(tag.split(':', 1) for tag in metrics[0].tags if ':' in tag)
    return metrics[0].value, tags['wire_verified'], tags['wire_result']


def event_texts(aggregator) -> str:
    return '\n'.join(event['msg_text'] for event in aggregator.events)


# -- the probe against the Go server -------------------------------------------------------------------------------


def rsa_serving(pki):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    write(f'{pki}/serving.crt', certs.pem(certs.certificate('kube-apiserver', is_ca=False, key=key)))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    write(f'{pki}/serving.key', pem)


@pytest.mark.parametrize('serving_key', ['ecdsa', 'rsa'])
def test_advertised_names_are_the_subjects_of_the_client_ca_file(serve, pki, serving_key):
    if serving_key == 'rsa':
        rsa_serving(pki)
    cas = [certs.certificate('kubernetes-ca', organization='example'), certs.certificate('second-ca')]
    ca = write(f'{pki}/client-ca.crt', certs.pem(*cas))
    server = serve(f'--client-ca-file={ca}')
    result = read_client_ca_names('127.0.0.1', server.port)
    assert result.outcome == 'advertised' and result.tls_version == 'TLSv1.2'
    expected = [c.subject.public_bytes() for c in cas]  # cryptography's DER of each subject, in file order
    assert list(result.names) == expected == list(pem_certificate_subjects(Path(ca).read_bytes()))
    assert [display_name(n) for n in result.names] == ['CN=kubernetes-ca,O=example', 'CN=second-ca']
    assert result.seconds < 0.5


def test_a_bundle_over_16_kib_is_read_across_records(serve, pki):
    cas = [certs.certificate(f'ca-{i:03d}-' + 'x' * 50, organization='o' * 60) for i in range(150)]
    ca = write(f'{pki}/client-ca.crt', certs.pem(*cas))
    assert os.path.getsize(ca) > 16 * 1024
    server = serve(f'--client-ca-file={ca}')
    result = read_client_ca_names('127.0.0.1', server.port)
    assert result.outcome == 'advertised'
    assert sum(len(name) for name in result.names) > 16 * 1024  # the CertificateRequest spans several records
    assert list(result.names) == [c.subject.public_bytes() for c in cas]


def test_tls13_only_server_is_read_in_tls13_when_its_flags_say_so(make_check, dd_run_check, aggregator, serve, pki):
    ca = write(f'{pki}/client-ca.crt', certs.valid_ca())
    serve(f'--client-ca-file={ca}', '--tls-min-version=VersionTLS13')
    _, sc = run(make_check, dd_run_check, aggregator)
    assert sc.status == AgentCheck.OK
    assert wire_gauge(aggregator) == (1, 'yes', 'advertised')
    assert 'Confirmed on the wire' in event_texts(aggregator)


def test_tls13_only_server_unknown_to_the_flags_costs_one_handshake_error_then_is_read_in_tls13(
    make_check, dd_run_check, aggregator, serve, pki
):
    ca = write(f'{pki}/client-ca.crt', certs.valid_ca())
    # TLS 1.3 only from a source the check does not read: TLS 1.2 is refused once (the one error the server logs),
    # then TLS 1.3 is used for this process without trying TLS 1.2 again.
    server = serve(f'--client-ca-file={ca}', env={'STANDIN_TLS13_ONLY': '1'}, expected_errors=1)
    check, sc = run(make_check, dd_run_check, aggregator)
    assert sc.status == AgentCheck.OK
    assert wire_gauge(aggregator) == (1, 'yes', 'advertised')
    run(make_check, dd_run_check, aggregator, check=check)
    run(make_check, dd_run_check, aggregator, check=check)
    assert wire_gauge(aggregator) == (1, 'yes', 'advertised')
    assert len(server.handshake_errors()) == 1


def test_tls13_only_server_without_a_way_to_read_tls13_is_not_verifiable(serve, pki):
    ca = write(f'{pki}/client-ca.crt', certs.valid_ca())
    server = serve(f'--client-ca-file={ca}', env={'STANDIN_TLS13_ONLY': '1'}, expected_errors=1)
    result = read_client_ca_names('127.0.0.1', server.port, allow_tls13=False)  # a Python without _msg_callback
    assert result.outcome == 'tls13_only' and not result.verifiable


def tls12_handshake(port: int) -> None:
    """A TLS 1.2-only handshake, connected through socket.create_connection as the probe connects."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(('127.0.0.1', port), timeout=5) as sock, pytest.raises(ssl.SSLError):
        context.wrap_socket(sock)


def test_stand_in_ports_are_below_the_ephemeral_range():
    """No outgoing connection, the stand-in's own --connections-first ones included, can take a port chosen so."""
    low = int(Path('/proc/sys/net/ipv4/ip_local_port_range').read_text().split()[0])
    assert wire_server.free_port() < low or low <= 10000


def test_only_the_test_s_own_failed_handshakes_are_counted(serve, pki):
    """A TLS 1.2 handshake from another process fails on a TLS 1.3-only server and is logged, but is not the test's;
    the same handshake from the test's process is."""
    ca = write(f'{pki}/client-ca.crt', certs.valid_ca())
    server = serve(f'--client-ca-file={ca}', env={'STANDIN_TLS13_ONLY': '1'}, expected_errors=1)
    another = f'from tests.test_wire import tls12_handshake; tls12_handshake({server.port})'
    subprocess.run([sys.executable, '-c', another], check=True, timeout=30, cwd=Path(__file__).parent.parent)
    deadline = time.monotonic() + 5
    while not os.path.exists(server.handshake_log) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(Path(server.handshake_log).read_text().splitlines()) == 1
    assert server.handshake_errors() == []
    tls12_handshake(server.port)


# -- the check's verdict with the wire -------------------------------------------------------------------------------


def test_file_ca_advertised_on_the_default_dual_stack_listener_confirms_the_pass(
    make_check, dd_run_check, aggregator, serve, pki
):
    rsa_serving(pki)
    ca = write(f'{pki}/client-ca.crt', certs.valid_ca())
    server = serve(f'--client-ca-file={ca}', bind='0.0.0.0')
    listener = find_listener('/proc', read_apiserver_process('/proc', server.pid))
    assert (listener.bound, listener.port, listener.probe_host) == ('::', server.port, '127.0.0.1')  # tcp6 only
    _, sc = run(make_check, dd_run_check, aggregator)
    assert sc.status == AgentCheck.OK
    assert wire_gauge(aggregator) == (1, 'yes', 'advertised')
    assert f'Confirmed on the wire: 127.0.0.1:{server.port} advertises every CA subject of {ca} (1).' in event_texts(
        aggregator
    )


def test_netlink_and_proc_show_the_same_listening_sockets(serve, pki):
    ca = write(f'{pki}/client-ca.crt', certs.valid_ca())
    dual, loopback = serve(f'--client-ca-file={ca}', bind='0.0.0.0'), serve(f'--client-ca-file={ca}')
    from_netlink, from_proc = diag_listening_sockets(), listening_sockets('/proc', dual.pid)
    assert from_netlink is not None
    assert sorted(from_netlink) == sorted(from_proc)
    ports = {(address, port) for address, port, _ in from_proc}
    assert {('::', dual.port), ('127.0.0.1', loopback.port)} <= ports


@pytest.mark.parametrize('listener_first', [True, False], ids=['listener-first', 'connections-first'])
def test_the_listener_is_found_among_thousands_of_connections(
    make_check, dd_run_check, aggregator, serve, pki, monkeypatch, listener_first
):
    """A busy apiserver holds thousands of connections: its fds are read lowest first, and the walk stops at its
    listener, which it opened as it started; one opened after them all is still found."""
    ca = write(f'{pki}/client-ca.crt', certs.valid_ca())
    order = [] if listener_first else ['--connections-first']
    server = serve(f'--client-ca-file={ca}', '--connections=1500', *order)
    process = read_apiserver_process('/proc', server.pid)
    fds = len(os.listdir(f'/proc/{server.pid}/fd'))
    read, real_readlink = [], os.readlink
    monkeypatch.setattr(os, 'readlink', lambda path, *a, **k: read.append(path) or real_readlink(path, *a, **k))
    listener = find_listener('/proc', process)
    monkeypatch.undo()
    fds_read = [path for path in read if f'/{server.pid}/fd/' in path]
    assert (listener.port, listener.probe_host) == (server.port, '127.0.0.1')
    assert fds > 3000
    assert len(fds_read) < 20 if listener_first else len(fds_read) > 3000
    _, sc = run(make_check, dd_run_check, aggregator)
    assert sc.status == AgentCheck.OK
    assert wire_gauge(aggregator) == (1, 'yes', 'advertised')


def test_no_certificate_request_is_critical_whatever_the_configuration_says(
    make_check, dd_run_check, aggregator, serve, pki
):
    ca = write(f'{pki}/client-ca.crt', certs.valid_ca())
    server = serve(f'--client-ca-file={ca}', '--no-client-auth')
    _, sc = run(make_check, dd_run_check, aggregator)
    assert sc.status == AgentCheck.CRITICAL
    assert sc.message.startswith(f'FAIL: the running kube-apiserver (pid {server.pid}) sends no TLS CertificateRequest')
    assert 'The configuration said: PASS' in sc.message  # both facts
    assert wire_gauge(aggregator) == (0, 'no', 'no_request')
    assert [m.value for m in aggregator.metrics('cis_kubernetes.control.compliant')] == [0]


def test_ca_missing_then_present_after_the_apiserver_reloads_the_file(make_check, dd_run_check, aggregator, serve, pki):
    first, second = certs.certificate('first-ca'), certs.certificate('second-ca')
    ca = write(f'{pki}/client-ca.crt', certs.pem(first))
    serve(f'--client-ca-file={ca}', '--reload-interval=200ms')
    check, _ = run(make_check, dd_run_check, aggregator)
    assert wire_gauge(aggregator) == (1, 'yes', 'advertised')
    write(ca, certs.pem(first, second))  # rotation: the apiserver has not re-read the file yet
    _, sc = run(make_check, dd_run_check, aggregator, check=check)
    assert sc.status == AgentCheck.OK  # one miss is not a verdict
    assert wire_gauge(aggregator) == (-1, 'not_verifiable', 'advertised')
    time.sleep(0.6)  # the server re-reads the file every 200 ms
    _, sc = run(make_check, dd_run_check, aggregator, check=check)
    assert sc.status == AgentCheck.OK
    assert wire_gauge(aggregator) == (1, 'yes', 'advertised')


def test_ca_not_loaded_on_two_consecutive_probes_warns_naming_it(make_check, dd_run_check, aggregator, serve, pki):
    first, second = certs.certificate('first-ca'), certs.certificate('second-ca', organization='rotated')
    ca = write(f'{pki}/client-ca.crt', certs.pem(first))
    serve(f'--client-ca-file={ca}', '--reload-interval=1h')
    check, _ = run(make_check, dd_run_check, aggregator)
    write(ca, certs.pem(first, second))
    _, sc = run(make_check, dd_run_check, aggregator, check=check)
    assert sc.status == AgentCheck.OK
    _, sc = run(make_check, dd_run_check, aggregator, check=check)
    assert sc.status == AgentCheck.WARNING
    assert 'has not loaded the CA CN=second-ca,O=rotated of' in sc.message
    assert wire_gauge(aggregator) == (0, 'no', 'advertised')
    assert [m.value for m in aggregator.metrics('cis_kubernetes.control.compliant')] == [1]


def test_requestheader_ca_only_stays_critical_and_says_what_the_wire_cannot_tell(
    make_check, dd_run_check, aggregator, serve, pki
):
    front_proxy = write(f'{pki}/front-proxy-ca.crt', certs.pem(certs.certificate('front-proxy-ca')))
    server = serve(f'--requestheader-client-ca-file={front_proxy}')
    assert [display_name(n) for n in read_client_ca_names('127.0.0.1', server.port).names] == ['CN=front-proxy-ca']
    _, sc = run(make_check, dd_run_check, aggregator)
    assert sc.status == AgentCheck.CRITICAL
    assert 'runs without --client-ca-file' in sc.message
    assert 'CN=front-proxy-ca' in sc.message and '--requestheader-client-ca-file' in sc.message
    assert wire_gauge(aggregator) == (-1, 'not_verifiable', 'advertised')


def test_union_with_the_requestheader_ca_confirms_the_client_ca(make_check, dd_run_check, aggregator, serve, pki):
    ca = write(f'{pki}/client-ca.crt', certs.pem(certs.certificate('kubernetes-ca')))
    front_proxy = write(f'{pki}/front-proxy-ca.crt', certs.pem(certs.certificate('front-proxy-ca')))
    server = serve(f'--client-ca-file={ca}', f'--requestheader-client-ca-file={front_proxy}')
    names = read_client_ca_names('127.0.0.1', server.port).names
    assert [display_name(n) for n in names] == ['CN=kubernetes-ca', 'CN=front-proxy-ca']  # client CA first
    _, sc = run(make_check, dd_run_check, aggregator)
    assert sc.status == AgentCheck.OK
    assert wire_gauge(aggregator) == (1, 'yes', 'advertised')


def test_plain_http_on_the_port_changes_nothing_and_says_why(make_check, dd_run_check, aggregator, serve, pki):
    ca = write(f'{pki}/client-ca.crt', certs.valid_ca())
    server = serve(f'--client-ca-file={ca}', '--plain-http')
    check, sc = run(make_check, dd_run_check, aggregator)
    assert sc.status == AgentCheck.OK
    assert wire_gauge(aggregator) == (-1, 'not_verifiable', 'not_tls')
    assert any('not verified on the wire: the port does not answer with TLS' in w for w in check.warnings)
    assert read_client_ca_names('127.0.0.1', server.port).outcome == 'not_tls'


def test_a_port_that_never_answers_is_given_up_within_the_timeout(make_check, dd_run_check, aggregator, serve, pki):
    ca = write(f'{pki}/client-ca.crt', certs.valid_ca())
    server = serve(f'--client-ca-file={ca}', '--hang')
    result = read_client_ca_names('127.0.0.1', server.port, timeout=0.5)
    assert result.outcome == 'timeout' and 0.45 < result.seconds < 1.0  # 0.5 s asked; margin for a loaded CI
    started = time.monotonic()
    _, sc = run(make_check, dd_run_check, aggregator)
    assert time.monotonic() - started < 2.5  # WIRE_TIMEOUT (1 s) and the rest of the run
    assert sc.status == AgentCheck.OK
    assert wire_gauge(aggregator) == (-1, 'not_verifiable', 'timeout')


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root: starts the apiserver in a network namespace of its own')
def test_listener_in_another_network_namespace_is_not_probed_and_says_how_to_reach_it(
    make_check, dd_run_check, aggregator, serve, pki
):
    ca = write(f'{pki}/client-ca.crt', certs.valid_ca())
    server = serve(f'--client-ca-file={ca}', prefix=['unshare', '--net'], bind='0.0.0.0')
    with pytest.raises(ConnectionRefusedError), socket.create_connection(('127.0.0.1', server.port), timeout=1):
        pass  # nothing listens on that port in our namespace
    check, sc = run(make_check, dd_run_check, aggregator)
    assert sc.status == AgentCheck.OK
    assert wire_gauge(aggregator) == (-1, 'not_verifiable', 'other_netns')
    assert any('hostNetwork: true' in w for w in check.warnings)


def test_wire_probe_off_sends_no_gauge_and_probes_nothing(
    make_check, dd_run_check, aggregator, serve, pki, monkeypatch
):
    ca = write(f'{pki}/client-ca.crt', certs.valid_ca())
    serve(f'--client-ca-file={ca}', '--no-client-auth')
    monkeypatch.setattr(check_module, 'probe_apiserver', lambda *a, **k: pytest.fail('probed'))
    _, sc = run(make_check, dd_run_check, aggregator, {'wire_probe': False})
    assert sc.status == AgentCheck.OK  # the configuration's verdict alone
    assert not aggregator.metrics(WIRE_METRIC)


def test_probes_run_every_interval_and_the_last_result_holds_between(
    make_check, dd_run_check, aggregator, serve, pki, monkeypatch
):
    ca = write(f'{pki}/client-ca.crt', certs.valid_ca())
    serve(f'--client-ca-file={ca}', '--no-client-auth')
    probes = []
    real_probe = check_module.probe_apiserver
    monkeypatch.setattr(check_module, 'probe_apiserver', lambda *a, **k: probes.append(1) or real_probe(*a, **k))
    check = make_check({'wire_probe_interval': 300})
    clock = [1000.0]
    check._monotonic = lambda: clock[0]
    for _ in range(3):
        _, sc = run(make_check, dd_run_check, aggregator, check=check)
        assert sc.status == AgentCheck.CRITICAL  # the last probe's result holds between probes: no flapping
    assert len(probes) == 1
    clock[0] += 300
    run(make_check, dd_run_check, aggregator, check=check)
    assert len(probes) == 2


def test_a_failing_probe_costs_nothing_of_the_verdict(make_check, dd_run_check, aggregator, serve, pki, monkeypatch):
    ca = write(f'{pki}/client-ca.crt', certs.valid_ca())
    serve(f'--client-ca-file={ca}')

    def broken(*args):
        raise ValueError('unexpected kernel answer')

    monkeypatch.setattr('datadog_checks.cis_kubernetes.listeners.find_listener', broken)
    check, sc = run(make_check, dd_run_check, aggregator)
    assert sc.status == AgentCheck.OK
    assert wire_gauge(aggregator) == (-1, 'not_verifiable', 'error')
    assert any('ValueError: unexpected kernel answer' in w for w in check.warnings)
