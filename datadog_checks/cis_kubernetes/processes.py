"""Finding kube-apiserver processes: what a process is (its program, a multi-call binary's subcommand), never text in
another process's arguments."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import psutil

from .flags import effective_flags
from .procfs import process_name, read_proc_bytes, split_cmdline

APISERVER_PROGRAM = 'kube-apiserver'
# Programs that run kube-apiserver inside them: program -> (kind, the subcommands that do; None for any).
EMBEDDING_PROGRAMS = {
    'hyperkube': ('kube-apiserver', frozenset({'apiserver', 'kube-apiserver'})),
    'k3s': ('k3s', frozenset({'server'})),
    'kubelite': ('microk8s', None),
    'microshift': ('microshift', frozenset({'run'})),
    'openshift': ('openshift-3', frozenset({'start'})),
}
# Processes whose presence says this node runs (or should run) a control plane.
WITNESS_PROGRAMS = frozenset({'kubelet'})  # and `rke2 server`
COMM_MAX_LENGTH = 15  # the kernel cuts process names (comm) to 15 characters


@dataclass(frozen=True)
class ApiserverProcess:
    pid: int
    create_time: float
    name: str
    args: tuple[str, ...]  # the apiserver's arguments, without the program (and subcommand)
    flags: Mapping[str, str] = field(repr=False, compare=False, hash=False, default_factory=dict)
    kind: str = 'kube-apiserver'  # kube-apiserver, k3s, microk8s, microshift or openshift-3
    args_hidden: bool = False  # the process rewrote its title (k3s): its arguments are not in /proc
    ppid: int = 0
    parent: str = ''  # the parent's process name

    @property
    def label(self) -> str:
        return f'{self.name} (pid {self.pid})'


def might_be_apiserver(program: str) -> bool:
    """Cheap first filter on a program or process name alone."""
    return program.startswith(APISERVER_PROGRAM) or program in EMBEDDING_PROGRAMS


def identify(comm: str, argv: Sequence[str]) -> tuple[str, tuple[str, ...], bool] | None:
    """(kind, the apiserver's arguments, whether they are hidden) when the process runs kube-apiserver, else None.

    Identity comes from what the process is (its name and program, a multi-call binary's subcommand), never from
    text in its arguments: wrappers such as go-runner, watch-termination or `sh -c` carry the apiserver's flags but
    are not the apiserver.
    """
    hidden = False
    if argv and ' ' in argv[0] and not any(argv[1:]):  # a rewritten process title, as k3s does
        argv, hidden = argv[0].split(), True
    if not argv:
        return None
    program = argv[0].rsplit('/', 1)[-1]
    if program[:COMM_MAX_LENGTH] != comm[:COMM_MAX_LENGTH]:
        return None
    if program == APISERVER_PROGRAM or program.startswith(APISERVER_PROGRAM + '-'):
        return 'kube-apiserver', tuple(argv[1:]), hidden
    kind, subcommands = EMBEDDING_PROGRAMS.get(program, (None, None))
    if kind is None:
        return None
    if subcommands is None:
        return kind, tuple(argv[1:]), hidden
    if len(argv) < 2 or argv[1] not in subcommands:
        return None
    if kind == 'openshift-3':  # openshift start master [api] ...: the all-in-one master or its API half
        rest = argv[2:]
        if not rest or rest[0] != 'master' or (len(rest) > 1 and not rest[1].startswith('-') and rest[1] != 'api'):
            return None
        return kind, tuple(arg for arg in rest[1:] if arg != 'api'), hidden
    return kind, tuple(argv[2:]), hidden


PROCESS_GONE = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ProcessLookupError, OSError)


def read_apiserver_process(procfs: str, pid: int) -> ApiserverProcess | None:
    """The process `pid` as an apiserver, or None when it is something else or went away while we looked."""
    try:
        comm = process_name(procfs, pid)
        identity = identify(comm, split_cmdline(read_proc_bytes(procfs, pid, 'cmdline')))
        if identity is None:
            return None
        kind, args, hidden = identity
        process = psutil.Process(pid)
        create_time, ppid = process.create_time(), process.ppid()
    except PROCESS_GONE:
        return None
    return ApiserverProcess(
        pid=pid,
        create_time=create_time,
        name=comm,
        args=args,
        flags=effective_flags(args),
        kind=kind,
        args_hidden=hidden,
        ppid=ppid,
        parent=process_name(procfs, ppid),
    )


def _program(proc_fd: int, pid: str) -> str:
    """Cheap first look: the executable's name (one readlink), or the process name when the executable is hidden."""
    try:
        return os.readlink(pid + '/exe', dir_fd=proc_fd).rsplit('/', 1)[-1].removesuffix(' (deleted)')
    except PermissionError:  # another user's process and no CAP_SYS_PTRACE: its name is still readable
        try:
            fd = os.open(pid + '/comm', os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_fd)
        except OSError:
            return ''
        try:
            return os.read(fd, 64).rstrip(b'\n').decode('utf-8', 'replace')
        finally:
            os.close(fd)
    except OSError:  # gone, a zombie or a kernel thread: no executable
        return ''


@dataclass(frozen=True)
class ProcessScan:
    apiservers: tuple[ApiserverProcess, ...]
    witnesses: frozenset[str]  # WITNESS_PROGRAMS seen running: kubelet, rke2 server
    sees_others: bool = True  # init (pid 1) is listed: procfs does not hide other users' processes (hidepid)
    listed: int = 1  # processes listed at all


def scan_processes(procfs: str) -> ProcessScan:
    found = []
    witnesses = set()
    proc_fd = os.open(procfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pids = os.listdir(proc_fd)  # what psutil.pids() lists, without its failure on an empty listing
        for pid in pids:
            if not pid.isdigit():
                continue
            program = _program(proc_fd, pid)
            if program in WITNESS_PROGRAMS or (program == 'rke2' and _is_rke2_server(procfs, pid)):
                witnesses.add(program)
            elif might_be_apiserver(program):
                process = read_apiserver_process(procfs, int(pid))
                if process is not None:
                    found.append(process)
    finally:
        os.close(proc_fd)
    return ProcessScan(
        apiservers=tuple(found),
        witnesses=frozenset(witnesses),
        sees_others='1' in pids,
        listed=sum(pid.isdigit() for pid in pids),
    )


def _is_rke2_server(procfs: str, pid: str) -> bool:
    try:
        argv = split_cmdline(read_proc_bytes(procfs, int(pid), 'cmdline'))
    except OSError:
        return False
    return argv[1:2] == ['server']


def is_same_process_running(process: ApiserverProcess) -> bool:
    try:
        current = psutil.Process(process.pid)
        return current.create_time() == process.create_time and current.status() != psutil.STATUS_ZOMBIE
    except PROCESS_GONE:
        return False
