"""The Go stand-in for kube-apiserver's TLS serving (tests/wire/apiserver_standin.go): built once, run as a process
named kube-apiserver with the apiserver's flags. Shared by the tests, the demo and the benchmark."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / 'tests' / 'wire' / 'apiserver_standin.go'


def build(out: str) -> str | None:
    """The path of the built server (a binary named kube-apiserver under `out`), None when Go is missing."""
    if shutil.which('go') is None:
        return None
    env = {**os.environ, 'GO111MODULE': 'off', 'GOCACHE': f'{out}/cache', 'GOPATH': f'{out}/gopath'}
    binary = f'{out}/bin/kube-apiserver'  # the check recognises the apiserver by its program's name
    subprocess.run(['go', 'build', '-o', binary, str(SOURCE)], check=True, env=env, cwd=out, capture_output=True)
    return binary


def free_port() -> int:
    """A free loopback port below the kernel's ephemeral range: no outgoing connection can take it between this look
    and the server's bind (a server started with --connections-first opens 1,500 before it listens, and an ephemeral
    port from bind(0) was taken by one of them about once in twenty runs)."""
    low = int(Path('/proc/sys/net/ipv4/ip_local_port_range').read_text().split()[0])
    first = 10000
    if low <= first:  # an unusual range: the kernel's choice
        return _bound_port(0)
    offset = os.getpid() * 7919  # concurrent runs outside a network namespace start apart
    for i in range(low - first):
        port = first + (offset + i) % (low - first)
        try:
            return _bound_port(port)
        except OSError:
            continue
    raise OSError(f'no free loopback port from {first} to {low - 1}')


def _bound_port(port: int) -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', port))
        return s.getsockname()[1]


def start(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start the server with `argv` (binary first) and return once it listens."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    line = process.stdout.readline()
    if not line.startswith(b'listening'):
        process.kill()
        raise OSError(f'the Go apiserver did not start: {process.communicate()[1].decode(errors="replace")}')
    return process
