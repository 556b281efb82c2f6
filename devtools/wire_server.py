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
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def start(argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start the server with `argv` (binary first) and return once it listens."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    line = process.stdout.readline()
    if not line.startswith(b'listening'):
        process.kill()
        raise OSError(f'the Go apiserver did not start: {process.communicate()[1].decode(errors="replace")}')
    return process
