"""Reading a process's own files in /proc: bounded reads, argv as the kernel holds it, its name and environment."""

from __future__ import annotations

import os


def read_proc_bytes(procfs: str, pid: int, name: str, limit: int = 1 << 20) -> bytes:
    """At most `limit` bytes of the file `name` of process `pid`; OSError when the process is gone."""
    fd = os.open(f'{procfs}/{pid}/{name}', os.O_RDONLY | os.O_CLOEXEC)
    try:
        return read_at_most(fd, limit)
    finally:
        os.close(fd)


def split_cmdline(raw: bytes) -> list[str]:
    """argv exactly as the kernel holds it: NUL-separated, empty arguments kept."""
    if not raw:
        return []
    if raw.endswith(b'\0'):
        raw = raw[:-1]
    return [os.fsdecode(arg) for arg in raw.split(b'\0')]


def read_at_most(fd: int, limit: int) -> bytes:
    chunks = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(1 << 20, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b''.join(chunks)


def process_name(procfs: str, pid: int) -> str:
    """The process's name (comm), '' when it is gone."""
    try:
        return read_proc_bytes(procfs, pid, 'comm', limit=64).rstrip(b'\n').decode('utf-8', 'replace')
    except OSError:
        return ''


def process_environment(procfs: str, pid: int) -> dict[str, str]:
    """The environment the process started with."""
    try:
        raw = read_proc_bytes(procfs, pid, 'environ')
    except OSError:
        return {}
    pairs = (item.partition(b'=') for item in raw.split(b'\0') if b'=' in item)
    return {os.fsdecode(key): os.fsdecode(value) for key, _, value in pairs}
