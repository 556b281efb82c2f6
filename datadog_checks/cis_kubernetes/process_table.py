"""The process table across scans: which processes to look at, at what cost. processes.py says what each one is.

A first scan costs one listing of /proc and one readlink of each process's executable, what any scan must do. A
rescan looks only at processes it has not seen, and at those that matter; most rescans do not even list /proc.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .processes import (
    CANDIDATE_NAMES,
    SUPERVISOR_NAMES,
    WITNESS_PROGRAMS,
    ApiserverProcess,
    read_apiserver_process,
    witness,
)
from .procfs import process_name, read_at_most, read_proc_bytes, split_cmdline

# Programs that may exec() kube-apiserver in place, keeping their pid (`sh -c "exec kube-apiserver ..."`, `env`,
# `nice`...): a process seen as one of these is looked at again at every scan.
EXEC_WRAPPERS = frozenset(
    {'sh', 'bash', 'dash', 'ash', 'busybox', 'env', 'nice', 'nohup', 'ionice', 'setpriv', 'chroot', 'stdbuf', 'taskset'}
)
# What a scan does with a process, by the name of its executable: identify it, see whether it witnesses a control
# plane, or look at it again at every scan (an exec wrapper); any other process is set aside until its pid is reused.
LOOK_CLOSER = {
    **dict.fromkeys(CANDIDATE_NAMES, 'candidate'),
    **dict.fromkeys(WITNESS_PROGRAMS | SUPERVISOR_NAMES, 'witness'),
    **dict.fromkeys(EXEC_WRAPPERS, 'wrapper'),
}
FULL_SCAN_EVERY = 10  # scans: an incremental rescan's safety net, whatever it may have missed
MAX_NEW_PIDS = 2048  # more processes created since the last scan than this: list /proc instead
_read_exe = os.readlink  # the one system call a scan makes per process (tests count it)
MISSING = object()


@dataclass(frozen=True)
class ProcessScan:
    apiservers: tuple[ApiserverProcess, ...]
    witnesses: frozenset[str]  # seen running: kubelet, rke2 (server), k0s (controller)
    supervisors: tuple[tuple[str, int], ...] = ()  # (witness, pid) of the supervisors among them: rke2, k0s
    sees_others: bool = True  # init (pid 1) is listed: procfs does not hide other users' processes (hidepid)
    listed: int = 1  # processes listed at all


def scan_processes(procfs: str) -> ProcessScan:
    """One full pass over the process table."""
    return ProcessTable().scan(procfs, full=True)


class ProcessTable:
    """The process table across scans: a rescan looks only at processes it has not seen, and at those that matter.

    A process is known by its pid and the inode number of its /proc/<pid> directory, which readdir gives for free
    (os.scandir's DirEntry.inode(), getdents' d_ino). procfs gives a process's directory a fresh inode from a
    counter that does not repeat (fs/proc/base.c proc_pid_make_inode, get_next_ino) and flushes it when the process
    exits (proc_flush_pid), so a pid reused by a new process shows a new inode: it is looked at again, as a full scan
    would. The inode can also change for the same process (its dentry evicted under memory pressure): it is then
    looked at again, which costs a readlink and misses nothing. tests/test_discovery.py checks both on this kernel.
    What is skipped is only what is neither an apiserver candidate, a witness nor an exec wrapper; a process can
    still become an apiserver without a new pid only by exec(), which wrappers are re-read for, and every
    FULL_SCAN_EVERY scans all processes are looked at again.

    Most rescans do not even list /proc: when the kernel's pid counters say few processes were created since the
    last scan, only the pids handed out since are looked at (pids_handed_out says why that is complete). The first
    scan lists /proc without the inodes, which costs a third of the listing: a later listing, if there is one before
    the next full pass, finds no inode to compare and looks at every process once.
    """

    def __init__(self) -> None:
        # pid -> /proc/<pid> inode of a process seen to be none of those; None where the first pass did not read it
        self._quiet: dict[str, int | None] = {}
        self._recheck: dict[str, int | None] = {}  # pid -> inode of the processes looked at again at every scan
        self._scans = 0
        self._pids: PidCounters | None = None  # the kernel's pid counters at the last scan
        self._listed = (1, True)  # (processes listed, pid 1 among them) at the last listing of /proc

    def scan(self, procfs: str, full: bool = False) -> ProcessScan:
        first = self._scans == 0
        full = full or self._scans % FULL_SCAN_EVERY == 0
        self._scans += 1
        proc_fd = os.open(procfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            counters = pid_counters(proc_fd)
            new_pids = None if full else pids_handed_out(self._pids, counters)
            if first:  # the listing without inodes, a third cheaper: only a later listing compares them (once)
                inodes, known = dict.fromkeys(_pids(proc_fd)), None
            elif new_pids is None:
                inodes, known = _listing(proc_fd), None if full else self._quiet
            else:  # no listing: a process created since the last scan has one of the pids handed out since
                inodes, known = {**self._recheck, **_entries(proc_fd, new_pids)}, None
            scan = self._look(procfs, proc_fd, inodes, known, listing=new_pids is None)
        finally:
            os.close(proc_fd)
        self._pids = counters
        return scan

    def _look(self, procfs: str, proc_fd: int, inodes: dict, known: dict | None, listing: bool) -> ProcessScan:
        """Look at the processes of `inodes` (pid -> inode of /proc/<pid>), but those `known` with the same inode."""
        # The loop is the whole cost of a first scan beyond the floor (a listing and a readlink per process): it makes
        # no call but the readlink, and names each executable once, since processes share executables.
        kinds: dict[str, str] = {}  # executable path -> what LOOK_CLOSER says of it ('' for nothing), for this scan
        closer: list[tuple[str, str, str]] = []  # (pid, kind, program) of the processes to look at closer
        read_exe = _read_exe
        pids = inodes if known is None else [pid for pid in inodes if known.get(pid, MISSING) != inodes[pid]]
        for pid in pids:
            try:
                exe = read_exe(pid + '/exe', dir_fd=proc_fd)
            except PermissionError:  # another user's process and no CAP_SYS_PTRACE: its name is still readable
                program = process_name(procfs, int(pid))
                if program in LOOK_CLOSER:
                    closer.append((pid, LOOK_CLOSER[program], program))
                continue
            except OSError:  # gone, a zombie or a kernel thread: no executable
                continue
            kind = kinds.get(exe)
            if kind is None:
                kind = kinds[exe] = LOOK_CLOSER.get(program_name(exe), '')
            if kind:  # any other program never becomes an apiserver: it is set aside
                closer.append((pid, kind, program_name(exe)))
        recheck = {pid: inodes[pid] for pid, _, _ in closer}
        quiet = dict(inodes)
        for pid in recheck:
            del quiet[pid]
        if listing:  # pids no longer listed are forgotten
            self._quiet = quiet
            self._listed = (len(inodes), '1' in inodes)
        else:
            self._quiet.update(quiet)
        self._recheck = recheck
        found, witnesses, supervisors = [], set(), []
        for pid, kind, program in closer:
            if kind == 'candidate':
                process = read_apiserver_process(procfs, int(pid))
                if process is not None:
                    found.append(process)
            elif kind == 'witness':
                seen = _witness(procfs, pid, program)
                if seen is not None:
                    witnesses.add(seen)
                    if seen in SUPERVISOR_NAMES:
                        supervisors.append((seen, int(pid)))
        listed, sees_others = self._listed
        return ProcessScan(
            apiservers=tuple(found),
            witnesses=frozenset(witnesses),
            supervisors=tuple(supervisors),
            sees_others=sees_others,
            listed=listed,
        )


def program_name(exe: str) -> str:
    """The program's name from its executable's path (a process name, for a hidden executable, is its own)."""
    return exe.rsplit('/', 1)[-1].removesuffix(' (deleted)')


def _pids(proc_fd: int) -> list[str]:
    return [name for name in os.listdir(proc_fd) if name.isdigit()]


def _listing(proc_fd: int) -> dict[str, int]:
    """pid -> inode of /proc/<pid>, for every process listed."""
    with os.scandir(proc_fd) as listing:  # what psutil.pids() lists, without its failure on an empty listing
        return {entry.name: entry.inode() for entry in listing if entry.name.isdigit()}


def _entries(proc_fd: int, pids) -> dict[str, int]:
    """pid -> inode of /proc/<pid>, for those of `pids` that exist."""
    entries = {}
    for pid in map(str, pids):
        try:
            entries[pid] = os.stat(pid, dir_fd=proc_fd, follow_symlinks=False).st_ino
        except OSError:
            continue
    return entries


@dataclass(frozen=True)
class PidCounters:
    last_pid: int  # the last pid handed out in the Agent's PID namespace (/proc/loadavg's last field, proc(5))
    forks: int  # processes and threads created since boot, in every namespace (/proc/stat `processes`)
    pid_max: int  # where pids wrap (/proc/sys/kernel/pid_max)


def pid_counters(proc_fd: int) -> PidCounters | None:
    """The kernel's pid counters, when `procfs` shows the Agent's own PID namespace (its `self` is this process):
    /proc/loadavg's last pid is always the reader's namespace's. None otherwise."""
    try:
        if os.readlink('self', dir_fd=proc_fd) != str(os.getpid()):
            return None
        last_pid = int(_procfs_file(proc_fd, 'loadavg').split()[-1])
        stat = _procfs_file(proc_fd, 'stat', 1 << 16)
        forks = int(stat[stat.index(b'\nprocesses ') + 11 :].split(maxsplit=1)[0])
        pid_max = int(_procfs_file(proc_fd, 'sys/kernel/pid_max'))
    except (OSError, ValueError, IndexError):
        return None
    return PidCounters(last_pid, forks, pid_max)


def pids_handed_out(before: PidCounters | None, now: PidCounters | None) -> range | list[int] | None:
    """The pids handed out since `before`, None when they cannot be told, or are too many to look at one by one.

    The kernel hands out pids cyclically after the last one, wrapping at pid_max (kernel/pid.c alloc_pid,
    idr_alloc_cyclic), and every pid handed out counts a fork in /proc/stat. With fewer forks than pid_max since the
    last scan, no pid was handed out twice, so every process created since (a pid reused by a new one included) has
    a pid in (last_pid then, last_pid now], cyclically. Only a privileged process can choose a pid instead
    (ns_last_pid, clone3's set_tid: checkpoint/restore); the full pass every FULL_SCAN_EVERY scans finds that.
    """
    if before is None or now is None or now.pid_max != before.pid_max or now.pid_max <= MAX_NEW_PIDS:
        return None
    if not 0 <= now.forks - before.forks <= MAX_NEW_PIDS:
        return None
    if now.last_pid >= before.last_pid:
        return range(before.last_pid + 1, now.last_pid + 1)
    return [*range(before.last_pid + 1, now.pid_max), *range(1, now.last_pid + 1)]


def _procfs_file(proc_fd: int, path: str, limit: int = 256) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_fd)
    try:
        return read_at_most(fd, limit)
    finally:
        os.close(fd)


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
