"""Reading a process's own files in /proc: bounded reads, argv as the kernel holds it, its name and environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from .access import Credentials, credentials_from_status, id_ranges_from_map


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


@dataclass(frozen=True)
class ProcessStat:
    """What /proc/<pid>/stat says of a process (proc(5)): one read, where psutil makes three (its stat twice and the
    boot time from /proc/stat)."""

    name: str  # comm, as /proc/<pid>/comm shows it (fs/proc/array.c proc_task_name, unescaped in both)
    state: str  # R, S, D, Z (zombie), X (dead)...
    ppid: int
    start_ticks: int  # starttime, in clock ticks after boot: with the pid, which process this is


def process_stat(procfs: str, pid: int) -> ProcessStat:
    """OSError when the process is gone, ValueError when the file is not what proc(5) says."""
    raw = read_proc_bytes(procfs, pid, 'stat', limit=4096)
    name_end = raw.rfind(b')')  # comm may hold spaces and parentheses: it ends at the last ')'
    fields = raw[name_end + 2 :].split()
    if raw.find(b' (') < 0 or name_end < 0 or len(fields) < 20:
        raise ValueError(f'{procfs}/{pid}/stat is not as proc(5) describes it')
    name = raw[raw.index(b' (') + 2 : name_end].decode('utf-8', 'replace')
    return ProcessStat(name, fields[0].decode('ascii', 'replace'), int(fields[1]), int(fields[19]))


def process_environment(procfs: str, pid: int) -> dict[str, str]:
    """The environment the process started with."""
    try:
        raw = read_proc_bytes(procfs, pid, 'environ')
    except OSError:
        return {}
    pairs = (item.partition(b'=') for item in raw.split(b'\0') if b'=' in item)
    return {os.fsdecode(key): os.fsdecode(value) for key, _, value in pairs}


def process_credentials(procfs: str, pid: int) -> Credentials | None:
    """What the kernel checks the process's file access against, or None when the Agent cannot tell.

    Ids in /proc/<pid>/status are shown in the Agent's user namespace, as `stat` shows file owners. A process in
    another user namespace has its capabilities only over files whose owner and group are mapped there.
    """
    try:
        status = read_proc_bytes(procfs, pid, 'status', limit=1 << 16).decode('ascii', 'replace')
        credentials = credentials_from_status(status)
        if credentials is None:
            return None
        own, theirs = os.stat('/proc/self/ns/user'), os.stat(f'{procfs}/{pid}/ns/user')
        if (own.st_dev, own.st_ino) == (theirs.st_dev, theirs.st_ino):
            return credentials
        uid_map = read_proc_bytes(procfs, pid, 'uid_map', limit=1 << 16).decode('ascii', 'replace')
        gid_map = read_proc_bytes(procfs, pid, 'gid_map', limit=1 << 16).decode('ascii', 'replace')
    except OSError:
        return None
    return replace(credentials, mapped_uids=id_ranges_from_map(uid_map), mapped_gids=id_ranges_from_map(gid_map))
