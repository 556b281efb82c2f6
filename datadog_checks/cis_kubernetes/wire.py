"""On the wire: the CA names a running apiserver asks its clients for, read from its TLS CertificateRequest.

kube-apiserver sends a CertificateRequest only when it has a client CA (the union of --client-ca-file and
--requestheader-client-ca-file, client CA first), listing their subject names (Go's crypto/tls: ClientCAs.Subjects()).
Python's ssl module does not expose that message, so the probe drives an ssl.SSLObject over memory BIOs and reads
the server's bytes itself: in TLS 1.2 the handshake messages before ChangeCipherSpec are plaintext (RFC 5246 7.4.4).
A TLS-1.3-only server encrypts it: there the private but long-standing SSLContext._msg_callback (Python 3.8+) hands
over the decrypted message, or the server is reported as not verifiable, never as a failure.

The handshake is completed without a client certificate and closed with close_notify: the apiserver then logs no
handshake error and counts none in apiserver_tls_handshake_errors_total (an aborted handshake does both).
"""

from __future__ import annotations

import contextlib
import time
import typing
from dataclasses import dataclass

if typing.TYPE_CHECKING:
    import socket
    import ssl

WIRE_TIMEOUT = 1.0  # seconds for the whole probe: connect, handshake, close
WIRE_READ_LIMIT = 512 * 1024  # bytes read from the server at most (a 150-CA bundle is about 20 KiB)
WIRE_RECORD_LIMIT = 2**14 + 2048  # the largest TLS record RFC 5246 allows (TLSCiphertext)
TLS_ALERT_PROTOCOL_VERSION = 70
# Outcomes. Verifiable: the server's answer says what it asks of clients.
ADVERTISED, NO_REQUEST = 'advertised', 'no_request'
# Not verifiable: why the wire could not be read (the configuration's verdict stands). The pod settings: Helm chart
# DataDog/helm-charts charts/datadog values.yaml `agents.useHostNetwork`; Operator DataDog/datadog-operator
# docs/configuration_public.md `[component].hostNetwork` (commit 01137445).
NOT_VERIFIABLE_HINTS = {
    'tls13_only': 'the apiserver accepts only TLS 1.3 and this Python cannot read its encrypted CertificateRequest',
    'not_tls': 'the port does not answer with TLS',
    'timeout': 'the port did not answer in time',
    'refused': 'the connection was refused',
    'closed': 'the server closed the connection during the handshake',
    'handshake_failed': 'the TLS handshake failed',
    'no_listener': 'the apiserver owns no listening socket on its secure port',
    'other_netns': "the apiserver listens in another network namespace (in Kubernetes: run the Agent's pod with "
    "hostNetwork: true, e.g. the Helm chart's agents.useHostNetwork or the Operator's spec.override.nodeAgent"
    '.hostNetwork)',
    'privileges': "the Agent may not see the apiserver's sockets (run it as root with hostPID, or with CAP_SYS_PTRACE)",
    'bind_address': 'the apiserver listens only on an address that is not loopback; the probe connects to loopback '
    'only (bind it to 0.0.0.0, ::, or a loopback address)',
    'error': 'the probe failed',
}


@dataclass(frozen=True)
class WireResult:
    """What the running apiserver asked of a client without a certificate, or why that is unknown."""

    outcome: str  # ADVERTISED, NO_REQUEST, or a key of NOT_VERIFIABLE_HINTS
    names: tuple[bytes, ...] = ()  # DER DistinguishedNames of the CertificateRequest, in its order
    address: str = ''  # host:port probed
    detail: str = ''
    tls_version: str = ''  # TLSv1.2 or TLSv1.3 when the handshake completed
    seconds: float = 0.0

    @property
    def verifiable(self) -> bool:
        return self.outcome in (ADVERTISED, NO_REQUEST)

    @property
    def explanation(self) -> str:
        hint = NOT_VERIFIABLE_HINTS.get(self.outcome, self.outcome)
        return f'{hint}: {self.detail}' if self.detail else hint


# -- TLS: the server's plaintext handshake ---------------------------------------------------------------------


class _ServerFlight:
    """The server's TLS records as they arrive: plaintext handshake messages until its ChangeCipherSpec."""

    def __init__(self) -> None:
        self.buffer = b''
        self.handshake = b''
        self.messages: list[bytes] = []
        self.encrypted = False  # after the server's ChangeCipherSpec: nothing more is readable
        self.alert: int | None = None
        self.not_tls = False

    def feed(self, data: bytes) -> None:
        if self.encrypted or self.not_tls:
            return
        self.buffer += data
        while len(self.buffer) >= 5 and not self.encrypted:
            kind, major, length = self.buffer[0], self.buffer[1], int.from_bytes(self.buffer[3:5], 'big')
            if kind not in (20, 21, 22, 23) or major != 3 or length > WIRE_RECORD_LIMIT:
                self.not_tls = True
                return
            if len(self.buffer) < 5 + length:
                return
            body, self.buffer = self.buffer[5 : 5 + length], self.buffer[5 + length :]
            if kind == 20 or kind == 23:
                self.encrypted = True
            elif kind == 21 and len(body) >= 2 and self.alert is None:
                self.alert = body[1]
            elif kind == 22:
                self._handshake(body)

    def _handshake(self, body: bytes) -> None:
        self.handshake += body
        while len(self.handshake) >= 4:
            size = 4 + int.from_bytes(self.handshake[1:4], 'big')
            if len(self.handshake) < size:
                return
            self.messages.append(self.handshake[:size])
            self.handshake = self.handshake[size:]


def _vector(data: bytes, offset: int, width: int) -> tuple[bytes, int]:
    """A TLS vector with a `width`-byte length at `offset`: (its contents, the offset after it)."""
    if offset + width > len(data):
        raise ValueError('truncated CertificateRequest')
    length = int.from_bytes(data[offset : offset + width], 'big')
    start = offset + width
    if start + length > len(data):
        raise ValueError('truncated CertificateRequest')
    return data[start : start + length], start + length


def _distinguished_names(authorities: bytes) -> tuple[bytes, ...]:
    names = []
    offset = 0
    while offset < len(authorities):
        name, offset = _vector(authorities, offset, 2)
        names.append(name)
    return tuple(names)


def certificate_request_names(message: bytes, tls_version: str) -> tuple[bytes, ...]:
    """The certificate_authorities of a CertificateRequest handshake message (type 13, 4-byte header included).

    TLS 1.2 (RFC 5246 7.4.4): certificate_types<1..2^8-1>, supported_signature_algorithms<2..2^16-2>,
    certificate_authorities<0..2^16-1>. TLS 1.3 (RFC 8446 4.3.2): certificate_request_context<0..2^8-1>,
    extensions<2..2^16-1>, the names in extension 47 (certificate_authorities) when present.
    """
    if len(message) < 4 or message[0] != 13:
        raise ValueError('not a CertificateRequest')
    body = message[4:]
    if tls_version == 'TLSv1.3':
        _, offset = _vector(body, 0, 1)
        extensions, _ = _vector(body, offset, 2)
        offset = 0
        while offset + 4 <= len(extensions):
            kind = int.from_bytes(extensions[offset : offset + 2], 'big')
            data, offset = _vector(extensions, offset + 2, 2)
            if kind == 47:
                authorities, _ = _vector(data, 0, 2)
                return _distinguished_names(authorities)
        return ()
    _, offset = _vector(body, 0, 1)
    _, offset = _vector(body, offset, 2)
    authorities, _ = _vector(body, offset, 2)
    return _distinguished_names(authorities)


def _flush(sock: socket.socket, outgoing: ssl.MemoryBIO) -> None:
    pending = outgoing.read()
    if pending:
        sock.sendall(pending)


def _recv(sock: socket.socket, deadline: float) -> bytes:

    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError('probe deadline')
    sock.settimeout(remaining)
    return sock.recv(65536)


def read_client_ca_names(
    host: str, port: int, timeout: float = WIRE_TIMEOUT, tls13: bool = False, allow_tls13: bool = True
) -> WireResult:
    """Complete one TLS handshake with (host, port) without a client certificate and report its CertificateRequest.

    TLS 1.2 first (plaintext, public API), unless `tls13` says the server is known to accept only TLS 1.3; a
    protocol_version alert then leads to one TLS 1.3 handshake read through SSLContext._msg_callback when this
    Python has it (and `allow_tls13`). Never raises: every failure is a WireResult.
    """
    import ssl  # only where a probe runs: ssl and libssl cost the Agent about 4 MB unless another check loaded them

    started = time.monotonic()
    deadline = started + timeout
    can_read_tls13 = allow_tls13 and hasattr(ssl.SSLContext, '_msg_callback')
    result = None
    if not (tls13 and can_read_tls13):
        result = _handshake(host, port, deadline, tls13=False)
        if result.outcome != 'tls13_only' or not can_read_tls13:
            return _timed(result, started)
    return _timed(_handshake(host, port, deadline, tls13=True), started)


def _timed(result: WireResult, started: float) -> WireResult:
    return WireResult(
        result.outcome,
        result.names,
        result.address,
        result.detail,
        result.tls_version,
        round(time.monotonic() - started, 4),
    )


def _handshake(host: str, port: int, deadline: float, tls13: bool) -> WireResult:
    import socket
    import ssl

    address = f'[{host}]:{port}' if ':' in host else f'{host}:{port}'
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the server's certificate is not what is judged here
    context.minimum_version = ssl.TLSVersion.TLSv1_3 if tls13 else ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_3 if tls13 else ssl.TLSVersion.TLSv1_2
    decrypted: list[bytes] = []
    if tls13:

        def collect(conn, direction, version, content_type, msg_type, data):
            if direction == 'read' and content_type == 22 and len(data) >= 4 and len(decrypted) < 64:
                decrypted.append(bytes(data))

        context._msg_callback = collect
    flight = _ServerFlight()
    received = 0
    try:
        sock = socket.create_connection((host, port), timeout=max(deadline - time.monotonic(), 0.001))
    except TimeoutError:
        return WireResult('timeout', address=address, detail='no connection')
    except ConnectionRefusedError:
        return WireResult('refused', address=address)
    except OSError as e:
        return WireResult('error', address=address, detail=f'connect: {e.strerror or e}')
    try:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_side=False)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            _flush(sock, outgoing)
            data = _recv(sock, deadline)
            if not data:
                incoming.write_eof()
                if flight.not_tls:
                    return WireResult('not_tls', address=address)
                return WireResult('closed', address=address)
            received += len(data)
            if received > WIRE_READ_LIMIT:
                return WireResult('error', address=address, detail=f'the server sent more than {received} bytes')
            flight.feed(data)
            if flight.not_tls:
                return WireResult('not_tls', address=address, detail=f'it answered {data[:16]!r}')
            incoming.write(data)
        _flush(sock, outgoing)
        version = tls.version() or ''
        _close(sock, tls, outgoing, deadline)
    except ssl.SSLError as e:
        if flight.alert == TLS_ALERT_PROTOCOL_VERSION:
            return WireResult('tls13_only', address=address, detail='TLS 1.2 refused (protocol_version alert)')
        if flight.not_tls:
            return WireResult('not_tls', address=address)
        return WireResult('handshake_failed', address=address, detail=str(e.reason or e))
    except TimeoutError:
        return WireResult('timeout', address=address, detail=f'after {received} bytes')
    except OSError as e:
        return WireResult('error', address=address, detail=e.strerror or str(e))
    finally:
        sock.close()
    messages = decrypted if version == 'TLSv1.3' else flight.messages
    requests = [m for m in messages if m[0] == 13]
    if not requests:
        return WireResult(NO_REQUEST, address=address, tls_version=version)
    try:
        names = certificate_request_names(requests[0], version)
    except ValueError as e:
        return WireResult('error', address=address, detail=str(e), tls_version=version)
    return WireResult(ADVERTISED, names, address, tls_version=version)


def _close(sock: socket.socket, tls: ssl.SSLObject, outgoing: ssl.MemoryBIO, deadline: float) -> None:
    """close_notify, then wait for the server to close, so that it sees an orderly end and logs nothing."""
    import socket
    import ssl

    with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLError):
        tls.unwrap()
    _flush(sock, outgoing)
    sock.shutdown(socket.SHUT_WR)
    drained = 0
    try:  # unread data would turn our close into a reset
        while drained < WIRE_READ_LIMIT:
            data = _recv(sock, min(deadline, time.monotonic() + 0.2))
            if not data:
                break
            drained += len(data)
    except OSError:
        pass
