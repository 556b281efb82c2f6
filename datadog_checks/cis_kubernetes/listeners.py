"""Where a judged apiserver listens: its secure port from its flags or its distribution's default, confirmed against
the listening TCP sockets the process itself owns (/proc/<pid>/net/tcp and tcp6, matched with /proc/<pid>/fd).

Go listens dual-stack: kube-apiserver's default 0.0.0.0:6443 shows only in tcp6, as `::`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from dataclasses import dataclass

from .processes import ApiserverProcess
from .procfs import read_proc_bytes
from .wire import WireResult, read_client_ca_names

DEFAULT_SECURE_PORT = 6443
# Distributions whose apiserver runs inside another program, with no flags of its own in argv: (port, bind address).
# k3s: pkg/daemons/control/server.go (k3s-io/k3s c8331835) serves the embedded apiserver on HTTPSPort+1, 127.0.0.1,
# the supervisor on 6443 is another listener of the same process. MicroK8s: default-args/kube-apiserver (ac8c2134).
# MicroShift: pkg/controllers/kube-apiserver.go (a128cdaf). OpenShift 3: the master's servingInfo (inferred: 8443).
EMBEDDED_LISTENERS = {
    'k3s': (6444, '127.0.0.1'),
    'microk8s': (16443, '0.0.0.0'),
    'microshift': (6443, '0.0.0.0'),
    'openshift-3': (8443, '0.0.0.0'),
}
TCP_LISTEN = '0A'


@dataclass(frozen=True)
class Listener:
    """A listening socket of the apiserver, and where the probe may reach it."""

    port: int
    bound: str  # the address the socket is bound to, as the kernel shows it
    probe_host: str  # loopback address to connect to; '' when the probe must not connect
    why_not: str = ''  # an outcome of wire.NOT_VERIFIABLE_HINTS when probe_host is ''
    detail: str = ''


def expected_listener(process: ApiserverProcess) -> tuple[int, str]:
    """(secure port, bind address) the apiserver was told to use, or its distribution's defaults."""
    port, bind = EMBEDDED_LISTENERS.get(process.kind, (DEFAULT_SECURE_PORT, '0.0.0.0'))
    with contextlib.suppress(ValueError):
        port = int(process.flags.get('secure-port', port))
    return port, process.flags.get('bind-address') or bind


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    # tcp6: four 32-bit words, each in the kernel's (little-endian) byte order
    address = ipaddress.IPv6Address(b''.join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
    return str(address.ipv4_mapped or address)


def listening_sockets(procfs: str, pid: int) -> list[tuple[str, int, int]]:
    """(address, port, inode) of the TCP sockets in LISTEN state in the process's network namespace."""
    found = []
    for name in ('net/tcp', 'net/tcp6'):
        try:
            text = read_proc_bytes(procfs, pid, name, limit=8 << 20).decode('ascii', 'replace')
        except FileNotFoundError:
            continue  # no IPv6 in this kernel
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != TCP_LISTEN:
                continue
            address, _, port = fields[1].partition(':')
            try:
                found.append((_address(address), int(port, 16), int(fields[9])))
            except ValueError:
                continue
    return found


# sock_diag (linux/inet_diag.h): the kernel walks only its listening sockets, where reading /proc/net/tcp walks every
# connection's hash bucket (milliseconds on a busy node). Used in the Agent's own network namespace.
NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST_DUMP, NLMSG_ERROR, NLMSG_DONE = 4, 20, 0x301, 2, 3
TCP_LISTEN_STATE = 10


def diag_listening_sockets() -> list[tuple[str, int, int]] | None:
    """(address, port, inode) of the TCP sockets in LISTEN state in the Agent's network namespace, from netlink;
    None when the kernel refuses (the caller reads /proc instead)."""
    import socket
    import struct

    found = []
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as link:
            link.settimeout(1.0)
            for sequence, family in enumerate((socket.AF_INET, socket.AF_INET6), 1):
                # inet_diag_req_v2: family, protocol, ext, pad, states; then an inet_diag_sockid left zero (48 bytes)
                request = struct.pack('=BBBxI', family, socket.IPPROTO_TCP, 0, 1 << TCP_LISTEN_STATE) + bytes(48)
                header = struct.pack('=IHHII', 16 + len(request), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST_DUMP, sequence, 0)
                link.send(header + request)
                if not _diag_replies(link, family, found):
                    return None
    except OSError:
        return None
    return found


def _diag_replies(link, family: int, found: list[tuple[str, int, int]]) -> bool:
    """Read one dump's inet_diag_msg replies into `found`; False on a netlink error."""
    import struct

    for _ in range(10000):  # bounded: a dump ends with NLMSG_DONE
        data = link.recv(1 << 16)
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from('=IH', data, offset)
            if kind == NLMSG_DONE:
                return True
            if kind == NLMSG_ERROR or length < 16:
                return False
            message = data[offset + 16 : offset + length]
            if len(message) >= 72:  # inet_diag_msg: 4 bytes, inet_diag_sockid (48), 5 x u32 (inode last)
                port = struct.unpack_from('>H', message, 4)[0]
                raw = message[8:12] if family == 2 else message[8:24]
                address = ipaddress.ip_address(raw)
                address = getattr(address, 'ipv4_mapped', None) or address
                found.append((str(address), port, struct.unpack_from('=I', message, 68)[0]))
            offset += (length + 3) & ~3
    return False


EARLY_FDS = 64  # fds 0-63: where a server's listening sockets are (it opens them as it starts)


def socket_inodes(procfs: str, pid: int, among: set[int] | None = None) -> set[int]:
    """Inodes of the sockets the process holds open, or only those `among` the given ones (PermissionError without
    ptrace access to it).

    With `among`, its first fds are read before any listing: a server opens its listening sockets as it starts, so
    they get low fd numbers (the kernel hands out the lowest free one), and the thousands of connections a busy
    apiserver holds come after; listing /proc/<pid>/fd alone would cost more than those few reads. That order is
    inferred (k8s.io/apiserver's SecureServingOptions.ApplyTo creates the listener while the server is configured,
    before it serves), not seen in a listing of a real apiserver's fds: a listener with a high fd number is still
    found, by the whole walk (tests/test_wire.py: the Go apiserver holding thousands of connections opened after its
    listener, and before it).
    """
    fd_dir = f'{procfs}/{pid}/fd'
    inodes = set()
    if among:
        for fd in range(EARLY_FDS):
            inode = _socket_inode(f'{fd_dir}/{fd}')
            if inode in among:
                inodes.add(inode)
                if len(inodes) == len(among):
                    return inodes
    for fd in os.listdir(fd_dir):
        inode = _socket_inode(f'{fd_dir}/{fd}')
        if inode is not None and (among is None or inode in among):
            inodes.add(inode)
    return inodes


def _socket_inode(path: str) -> int | None:
    """The inode of the socket an fd link points to; None for another kind of file or an fd not open (PermissionError
    without ptrace access to the process)."""
    try:
        target = os.readlink(path)
    except PermissionError:
        raise
    except OSError:
        return None  # not open, or closed meanwhile
    return int(target[8:-1]) if target.startswith('socket:[') else None


def same_network_namespace(procfs: str, pid: int) -> bool | None:
    """Whether the process shares the Agent's network namespace; None when that cannot be told."""
    try:
        return os.readlink(f'{procfs}/{pid}/ns/net') == os.readlink('/proc/self/ns/net')
    except OSError:
        return None


def find_listener(procfs: str, process: ApiserverProcess) -> Listener:
    """The apiserver's own listening socket on its secure port, and the loopback address to probe it on."""
    port, bind = expected_listener(process)
    try:
        same_namespace = same_network_namespace(procfs, process.pid)
        sockets = diag_listening_sockets() if same_namespace else None
        if sockets is None:
            sockets = listening_sockets(procfs, process.pid)
        on_port = {inode for _, p, inode in sockets if p == port}
        owned = socket_inodes(procfs, process.pid, on_port) if on_port else set()
        if not owned:  # none of its own on its port: which ports it does listen on, for the message
            owned = socket_inodes(procfs, process.pid)
    except PermissionError as e:
        return Listener(port, bind, '', 'privileges', str(e))
    except OSError as e:
        return Listener(port, bind, '', 'no_listener', f'the process is gone ({e.strerror or e})')
    mine = [(address, p) for address, p, inode in sockets if inode in owned]
    bound = sorted({address for address, p in mine if p == port})
    if not bound:
        ports = sorted({p for _, p in mine})
        return Listener(port, bind, '', 'no_listener', f'expected port {port}; it listens on {ports or "none"}')
    if same_namespace is False:
        return Listener(port, bound[0], '', 'other_netns', f'{bound[0]} port {port}')
    for address in bound:
        if address in ('0.0.0.0', '::'):
            return Listener(port, address, '127.0.0.1' if address == '0.0.0.0' or _dual_stack() else '::1')
        if ipaddress.ip_address(address).is_loopback:
            return Listener(port, address, address)
    return Listener(port, bound[0], '', 'bind_address', f'it listens on {", ".join(bound)}')


def _dual_stack() -> bool:
    """Whether a socket bound to `::` also accepts IPv4 (net.ipv6.bindv6only is 0, Go's and Linux's default)."""
    try:
        with open('/proc/sys/net/ipv6/bindv6only', 'rb') as f:
            return f.read().strip() == b'0'
    except OSError:
        return True


def probe_apiserver(procfs: str, process: ApiserverProcess, tls13: bool = False) -> WireResult:
    """What the apiserver asks of a client on its own secure port, or why that cannot be read from here.

    Never raises: the wire corroborates the verdict, so a failure here must not cost the configuration's verdict.
    """
    try:
        listener = find_listener(procfs, process)
        if not listener.probe_host:
            address = f'{listener.bound}:{listener.port}'
            return WireResult(listener.why_not, address=address, detail=listener.detail)
        tls13 = tls13 or process.flags.get('tls-min-version') == 'VersionTLS13'
        return read_client_ca_names(listener.probe_host, listener.port, tls13=tls13)
    except Exception as e:  # a bug, or a kernel answer this reader does not expect
        return WireResult('error', detail=f'{type(e).__name__}: {e}')
