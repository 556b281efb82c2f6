"""Which processes a scan looks at: every process /proc lists, by the name of its executable. processes.py says what
each one it looks at is.

A scan lists /proc, which lists thread-group leaders only (a thread's /proc/<tid> resolves but is never listed), and
reads each process's executable link, one readlink per process. Nothing is carried from one scan to the next: a
process that exec()'d in place since the last scan (runc init, crun, a shell's `exec`, systemd's forked child: the
same pid and the same /proc/<pid>) shows its new executable to the next readlink, and a reused pid is read as new.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .processes import (
    APISERVER_PROGRAM,
    CANDIDATE_NAMES,
    COMM_MAX_LENGTH,
    SUPERVISOR_NAMES,
    WITNESS_PROGRAMS,
    ApiserverProcess,
    read_apiserver_process,
    witness,
)
from .procfs import process_name, read_proc_bytes, split_cmdline

# What a scan does with a process, by the name of its executable: identify it, or see whether it witnesses a control
# plane; any other process is not looked at again until the next scan.
LOOK_CLOSER = {
    **dict.fromkeys(CANDIDATE_NAMES, 'candidate'),
    **dict.fromkeys(WITNESS_PROGRAMS | SUPERVISOR_NAMES, 'witness'),
}
MANY_NAMES = None  # an executable whose processes are named otherwise (a link to it, a multi-call binary)


@dataclass(frozen=True)
class ProcessScan:
    apiservers: tuple[ApiserverProcess, ...]
    witnesses: frozenset[str]  # seen running: kubelet, rke2 (server), k0s (controller)
    supervisors: tuple[tuple[str, int], ...] = ()  # (witness, pid) of the supervisors among them: rke2, k0s
    sees_others: bool = True  # init (pid 1) is listed: procfs does not hide other users' processes (hidepid)
    listed: int = 1  # processes listed at all


def look_closer(name: str) -> str:
    """What a scan does with a process of this executable's or process's name: 'candidate', 'witness' or ''.
    A renamed kube-apiserver build (`kube-apiserver-custom`, comm `kube-apiserver-`) is a candidate: its command
    line tells it from kops's `kube-apiserver-healthcheck` (processes.identify)."""
    kind = LOOK_CLOSER.get(name, '')
    if not kind and name.startswith(APISERVER_PROGRAM):
        return 'candidate'
    return kind


def scan_processes(procfs: str) -> ProcessScan:
    """One pass over the process table: list /proc, readlink each process's executable, identify the candidates."""
    proc_fd = os.open(procfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pids = [name for name in os.listdir(proc_fd) if name.isdigit()]
        closer = _closer(procfs, proc_fd, pids)
    finally:
        os.close(proc_fd)
    found, witnesses, supervisors = [], set(), []
    for pid, kind, program in closer:
        if kind == 'candidate':
            process = read_apiserver_process(procfs, int(pid), program)
            if process is not None:
                found.append(process)
        else:
            seen = _witness(procfs, pid, program)
            if seen is not None:
                witnesses.add(seen)
                if seen in SUPERVISOR_NAMES:
                    supervisors.append((seen, int(pid)))
    return ProcessScan(
        apiservers=tuple(found),
        witnesses=frozenset(witnesses),
        supervisors=tuple(supervisors),
        sees_others='1' in pids,
        listed=len(pids),
    )


def _closer(procfs: str, proc_fd: int, pids: list[str]) -> list[tuple[str, str, str]]:
    """(pid, kind, the executable's name) of the processes worth a closer look. The name of each distinct executable
    is judged once, since processes share executables; a process's own name (comm) is read only where it may differ:
    the executable is hidden (another user's process, no CAP_SYS_PTRACE), or the first of its processes is named
    otherwise, since it was exec'd through a link of another name (`kube-apiserver` -> a versioned build) or is a
    multi-call binary. What this cannot see is a link named kube-apiserver to a multi-call binary whose first process
    runs under the file's own name; the multi-call binaries that run apiservers (hyperkube, k3s) are candidates by
    their files' names."""
    kinds: dict[str, str | None] = {}  # executable path -> look_closer() of its name, or MANY_NAMES
    closer = []
    for pid in pids:
        try:
            exe = os.readlink(pid + '/exe', dir_fd=proc_fd)
        except PermissionError:
            comm = process_name(procfs, int(pid))
            kind = look_closer(comm)
            if kind:
                closer.append((pid, kind, comm))
            continue
        except OSError:  # gone, a zombie or a kernel thread: no executable
            continue
        if exe not in kinds:
            kinds[exe] = _kind_of_executable(procfs, pid, exe)
        kind = kinds[exe]
        if kind is MANY_NAMES:
            kind = look_closer(process_name(procfs, int(pid)))
        if kind:
            closer.append((pid, kind, program_name(exe)))
    return closer


def _kind_of_executable(procfs: str, pid: str, exe: str) -> str | None:
    name = program_name(exe)
    kind = look_closer(name)
    if kind:
        return kind
    comm = process_name(procfs, int(pid))
    return '' if comm in ('', name[:COMM_MAX_LENGTH]) else MANY_NAMES


def program_name(exe: str) -> str:
    """The program's name from its executable's path."""
    return exe.rsplit('/', 1)[-1].removesuffix(' (deleted)')


def _witness(procfs: str, pid: str, program: str) -> str | None:
    if program in WITNESS_PROGRAMS:
        return program
    try:
        comm = process_name(procfs, int(pid))
        argv = split_cmdline(read_proc_bytes(procfs, int(pid), 'cmdline'))
        cgroup = read_proc_bytes(procfs, int(pid), 'cgroup', limit=4096).decode('utf-8', 'replace')
    except OSError:
        return None
    return witness(comm, argv, cgroup)
