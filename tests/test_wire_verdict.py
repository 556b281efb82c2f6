"""The wire's pure parts: the verdict with the wire, the CertificateRequest's names, the kernel's socket tables."""

from __future__ import annotations

import pytest

from datadog_checks.cis_kubernetes import listeners
from datadog_checks.cis_kubernetes.judging import CRITICAL, OK, UNKNOWN, WARNING, Finding
from datadog_checks.cis_kubernetes.listeners import _address, expected_listener, find_listener
from datadog_checks.cis_kubernetes.processes import ApiserverProcess
from datadog_checks.cis_kubernetes.wire import WireResult, _ServerFlight, certificate_request_names
from datadog_checks.cis_kubernetes.wire_names import certificate_subject_der, display_name
from datadog_checks.cis_kubernetes.wire_verdict import (
    WIRE_NO,
    WIRE_NOT_VERIFIABLE,
    WIRE_YES,
    wire_verified,
    with_wire,
)
from devtools import certs

CA = certs.certificate('kubernetes-ca')
OTHER = certs.certificate('other-ca')
CA_NAME, OTHER_NAME = CA.subject.public_bytes(), OTHER.subject.public_bytes()
PROCESS = ApiserverProcess(pid=42, start_ticks=1, name='kube-apiserver', args=())
PASS = Finding(OK, 'PASS: kube-apiserver (pid 42) authenticates clients against /pki/ca.crt.', PROCESS, '/pki/ca.crt')
ADDRESS = '127.0.0.1:6443'


def advertised(*names: bytes) -> WireResult:
    return WireResult('advertised', names, ADDRESS, tls_version='TLSv1.2')


# -- with_wire -----------------------------------------------------------------------------------------------------


def test_every_file_subject_advertised_confirms_the_verdict():
    finding = with_wire(PASS, advertised(CA_NAME, OTHER_NAME), (CA_NAME,))
    assert finding.status == OK
    assert finding.reason.endswith(
        'Confirmed on the wire: 127.0.0.1:6443 advertises every CA subject of /pki/ca.crt (1).'
    )
    assert wire_verified(advertised(CA_NAME), (CA_NAME,)) == WIRE_YES


def test_no_certificate_request_is_critical_with_both_facts():
    finding = with_wire(PASS, WireResult('no_request', address=ADDRESS), (CA_NAME,))
    assert finding.status == CRITICAL and finding.compliant is False
    assert 'sends no TLS CertificateRequest on 127.0.0.1:6443' in finding.reason
    assert finding.reason.endswith('The configuration said: ' + PASS.reason)
    assert wire_verified(WireResult('no_request'), (CA_NAME,)) == WIRE_NO


def test_a_ca_missing_once_is_not_a_verdict_and_twice_is_a_warning_naming_it():
    once = with_wire(PASS, advertised(OTHER_NAME), (CA_NAME,))
    assert once.status == OK and 'CN=kubernetes-ca of /pki/ca.crt is not advertised yet' in once.reason
    assert wire_verified(advertised(OTHER_NAME), (CA_NAME,)) == WIRE_NOT_VERIFIABLE
    twice = with_wire(PASS, advertised(OTHER_NAME), (CA_NAME,), frozenset({CA_NAME}))
    assert twice.status == WARNING and twice.compliant
    assert twice.reason.startswith(
        'WARNING: the running kube-apiserver (pid 42) has not loaded the CA CN=kubernetes-ca'
    )
    assert wire_verified(advertised(OTHER_NAME), (CA_NAME,), frozenset({CA_NAME})) == WIRE_NO


def test_the_wire_never_lowers_a_failure():
    failing = Finding(CRITICAL, 'FAIL: every CA certificate in ... is expired.', PROCESS, '/pki/ca.crt')
    assert with_wire(failing, advertised(OTHER_NAME), (CA_NAME,), frozenset({CA_NAME})).status == CRITICAL
    assert with_wire(failing, advertised(CA_NAME), (CA_NAME,)).status == CRITICAL


@pytest.mark.parametrize('outcome', ['other_netns', 'privileges', 'bind_address', 'tls13_only', 'timeout', 'not_tls'])
def test_not_verifiable_changes_nothing(outcome):
    result = WireResult(outcome, address=ADDRESS)
    assert with_wire(PASS, result, (CA_NAME,)) == PASS
    assert wire_verified(result, (CA_NAME,)) == WIRE_NOT_VERIFIABLE


def test_unjudgeable_configuration_gets_what_the_wire_shows_and_cannot_show():
    microshift = Finding(UNKNOWN, 'UNKNOWN: microshift (pid 42): cannot be judged from the node.', PROCESS, None)
    finding = with_wire(microshift, advertised(CA_NAME), None)
    assert finding.status == UNKNOWN
    assert 'accepts client certificates from 1 CA name(s) (CN=kubernetes-ca)' in finding.reason
    assert 'on in the running process, but the wire cannot tell --client-ca-file from --requestheader' in finding.reason
    assert with_wire(microshift, WireResult('no_request', address=ADDRESS), None).status == CRITICAL


# -- parsing -------------------------------------------------------------------------------------------------------


def _vec(data: bytes, width: int) -> bytes:
    return len(data).to_bytes(width, 'big') + data


def _handshake(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, 'big') + body


def test_certificate_request_tls12_and_tls13():
    authorities = _vec(b''.join(_vec(n, 2) for n in (CA_NAME, OTHER_NAME)), 2)
    tls12 = _handshake(13, _vec(b'\x01\x40', 1) + _vec(b'\x04\x03\x08\x04', 2) + authorities)
    assert certificate_request_names(tls12, 'TLSv1.2') == (CA_NAME, OTHER_NAME)
    extensions = _vec(b'\x00\x0d' + _vec(_vec(b'\x04\x03', 2), 2) + b'\x00\x2f' + _vec(authorities, 2), 2)
    assert certificate_request_names(_handshake(13, _vec(b'', 1) + extensions), 'TLSv1.3') == (CA_NAME, OTHER_NAME)
    with pytest.raises(ValueError):
        certificate_request_names(tls12[:-3], 'TLSv1.2')


def test_handshake_messages_are_reassembled_across_records_and_http_is_not_tls():
    message = _handshake(13, b'x' * 20000)
    flight = _ServerFlight()
    for start in range(0, len(message), 16384):
        part = message[start : start + 16384]
        flight.feed(b'\x16\x03\x03' + len(part).to_bytes(2, 'big') + part)
    assert flight.messages == [message]
    http = _ServerFlight()
    http.feed(b'HTTP/1.1 400 Bad Request\r\n')
    assert http.not_tls


def test_subject_der_and_display_name_match_cryptography():
    cert = certs.certificate('kubernetes-ca', organization='example')
    assert certificate_subject_der(certs.der(cert)) == cert.subject.public_bytes()
    assert display_name(cert.subject.public_bytes()) == 'CN=kubernetes-ca,O=example'
    assert display_name(b'\x30\x05garbage').startswith('(undecodable name')


# -- listeners -----------------------------------------------------------------------------------------------------


def test_kernel_socket_addresses():
    assert _address('0100007F') == '127.0.0.1'
    assert _address('00000000000000000000000000000000') == '::'  # Go's dual-stack 0.0.0.0, in tcp6 only
    assert _address('00000000000000000000000001000000') == '::1'
    assert _address('0000000000000000FFFF00000100007F') == '127.0.0.1'  # v4-mapped


@pytest.mark.parametrize(
    ('kind', 'flags', 'expected'),
    [
        ('kube-apiserver', {}, (6443, '0.0.0.0')),
        ('kube-apiserver', {'secure-port': '8443', 'bind-address': '127.0.0.1'}, (8443, '127.0.0.1')),
        ('k3s', {}, (6444, '127.0.0.1')),  # the embedded apiserver, not the supervisor on 6443
        ('microk8s', {}, (16443, '0.0.0.0')),
        ('microshift', {}, (6443, '0.0.0.0')),
    ],
)
def test_expected_listener_from_flags_and_distribution_defaults(kind, flags, expected):
    process = ApiserverProcess(pid=1, start_ticks=0, name='x', args=(), flags=flags, kind=kind)
    assert expected_listener(process) == expected


def owning(inodes: set[int]):
    """listeners.socket_inodes of a process holding these socket inodes."""

    def socket_inodes(procfs, pid, among=None):
        return set(inodes) if among is None else inodes & among

    return socket_inodes


@pytest.mark.parametrize(
    ('sockets', 'expected'),
    [
        ([('10.0.0.5', 6443, 7)], ('bind_address', '')),  # only a node address: never probed off loopback
        ([('127.0.0.1', 6443, 7)], ('', '127.0.0.1')),
        ([('::', 6443, 7)], ('', '127.0.0.1')),  # dual-stack
        ([('0.0.0.0', 6443, 8)], ('no_listener', '')),  # a socket of another process
        ([('0.0.0.0', 6444, 7)], ('no_listener', '')),  # another port of this process
    ],
)
def test_which_listener_is_probed_and_where(monkeypatch, sockets, expected):
    monkeypatch.setattr(listeners, 'socket_inodes', owning({7}))
    monkeypatch.setattr(listeners, 'same_network_namespace', lambda procfs, pid: True)
    monkeypatch.setattr(listeners, 'diag_listening_sockets', lambda: sockets)
    monkeypatch.setattr(listeners, '_dual_stack', lambda: True)
    listener = find_listener('/proc', PROCESS)
    assert (listener.why_not, listener.probe_host) == expected


def test_another_network_namespace_is_read_from_proc_and_not_probed(monkeypatch):
    monkeypatch.setattr(listeners, 'socket_inodes', owning({7}))
    monkeypatch.setattr(listeners, 'same_network_namespace', lambda procfs, pid: False)
    monkeypatch.setattr(listeners, 'listening_sockets', lambda procfs, pid: [('127.0.0.1', 6443, 7)])
    monkeypatch.setattr(listeners, 'diag_listening_sockets', lambda: pytest.fail('our namespace is not theirs'))
    listener = find_listener('/proc', PROCESS)
    assert (listener.why_not, listener.probe_host, listener.bound) == ('other_netns', '', '127.0.0.1')


def test_k3s_is_probed_on_its_embedded_apiserver_not_its_supervisor(monkeypatch):
    # k3s serves its supervisor (RequestClientCert without CAs: an empty list) on 6443 and the embedded apiserver on
    # 127.0.0.1:6444, both sockets of the one `k3s server` process (k3s-io/k3s pkg/daemons/control/server.go).
    k3s = ApiserverProcess(pid=42, start_ticks=1, name='k3s-server', args=(), kind='k3s', args_hidden=True)
    monkeypatch.setattr(listeners, 'socket_inodes', owning({7, 8}))
    monkeypatch.setattr(listeners, 'same_network_namespace', lambda procfs, pid: True)
    monkeypatch.setattr(listeners, 'diag_listening_sockets', lambda: [('::', 6443, 7), ('127.0.0.1', 6444, 8)])
    listener = find_listener('/proc', k3s)
    assert (listener.port, listener.probe_host) == (6444, '127.0.0.1')
