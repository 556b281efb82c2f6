"""The suite's own namespaces (./dev.sh test as root): nothing else on the machine is seen by the check under test
or reaches the suite's servers."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not os.environ.get('CISK_OWN_NAMESPACES'),
    reason='the suite gets PID and network namespaces of its own only when ./dev.sh test runs as root',
)


def test_the_suite_sees_only_its_own_processes():
    init = Path('/proc/1/cmdline').read_bytes().split(b'\0')
    assert b'pytest' in init, init  # PID 1 of this namespace is the test run itself


def test_the_suite_has_a_network_of_its_own_with_loopback_up():
    assert [name for _, name in socket.if_nameindex()] == ['lo']
    with socket.create_server(('127.0.0.1', 0)) as server:
        socket.create_connection(server.getsockname(), timeout=1).close()
