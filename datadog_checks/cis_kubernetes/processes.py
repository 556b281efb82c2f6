"""Finding kube-apiserver processes: what a process is (its program, a multi-call binary's subcommand), never text in
another process's arguments."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import psutil

from .flags import effective_flags
from .procfs import process_name, read_at_most, read_proc_bytes, split_cmdline

APISERVER_PROGRAM = 'kube-apiserver'
# Every rule below is as narrow as the evidence for it: tests/data/process_identities.yaml holds what real nodes show
# (rendered in docs/process-identities.md) and tests/test_identities.py proves each row against these rules.
# Names of the executable (/proc/<pid>/exe) or, when it is hidden, of the process (comm) worth a closer look.
CANDIDATE_NAMES = frozenset(
    {
        'kube-apiserver',
        'hyperkube',
        'k3s',  # k3s's multi-call binary; in its container image, /bin/k3s itself
        'k3s-server',  # comm of a k3s server installed by get.k3s.io (exec'd through <data-dir>/data/<hash>/bin)
        'containerd',  # older k3s releases named their multi-call binary containerd (k3d issue 968: lsof)
        'kubelite',
        'microshift',
        'openshift',
    }
)
# Programs that run kube-apiserver inside them: comm -> (kind, the subcommands that do; None for any).
EMBEDDING_PROGRAMS = {
    'hyperkube': ('kube-apiserver', frozenset({'apiserver', 'kube-apiserver'})),
    'k3s': ('k3s', frozenset({'server'})),  # k3s's container image runs `/bin/k3s server` in-process
    'k3s-server': ('k3s', None),  # the comm says server whatever the title says (k3s issue 10616: titled `agent`)
    'kubelite': ('microk8s', None),
    'microshift': ('microshift', frozenset({'run'})),
    'openshift': ('openshift-3', frozenset({'start'})),
}
# Processes whose presence says this node runs (or should run) a control plane.
WITNESS_PROGRAMS = frozenset({'kubelet'})  # and `rke2 server`, `k0s controller`: see witness()
COMM_MAX_LENGTH = 15  # the kernel cuts process names (comm) to 15 characters
FALSE_WORDS = frozenset({'0', 'f', 'F', 'false', 'FALSE', 'False'})  # Go's strconv.ParseBool, as pflag reads a bool


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
    """Cheap first filter on the executable's name, or the process name when the executable is hidden."""
    return program in CANDIDATE_NAMES


def process_title(argv: Sequence[str]) -> tuple[list[str], bool]:
    """(the words of argv, whether it is a rewritten title): gspt writes one string with spaces, then NUL padding."""
    if argv and ' ' in argv[0] and not any(argv[1:]):
        return argv[0].split(), True
    return list(argv), False


def identify(comm: str, argv: Sequence[str]) -> tuple[str, tuple[str, ...], bool] | None:
    """(kind, the apiserver's arguments, whether they are hidden) when the process runs kube-apiserver, else None.

    Identity comes from what the process is (its name and program, a multi-call binary's subcommand), never from
    text in its arguments: wrappers such as go-runner, watch-termination or `sh -c` carry the apiserver's flags but
    are not the apiserver; and never from a prefix of a name (kops's `kube-apiserver-healthcheck` sidecar shows as
    `kube-apiserver-`).
    """
    argv, hidden = process_title(argv)
    if not argv:
        return None
    program = argv[0].rsplit('/', 1)[-1]
    if comm == 'k3s-server' and program == 'k3s':  # argv[0] is the k3s the service started; comm, the symlink
        return 'k3s', tuple(argv[2:] if argv[1:2] in (['server'], ['agent']) else argv[1:]), hidden
    if program != comm:
        return None
    if program == APISERVER_PROGRAM:
        return 'kube-apiserver', tuple(argv[1:]), hidden
    kind, subcommands = EMBEDDING_PROGRAMS.get(program, (None, None))
    if kind is None:
        return None
    if kind == 'microk8s':  # a MicroK8s worker (clustered.lock) runs kubelite with --start-control-plane=false
        return None if _starts_no_control_plane(argv[1:]) else (kind, tuple(argv[1:]), hidden)
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


def _starts_no_control_plane(args: Sequence[str]) -> bool:
    """kubelite's boolean --start-control-plane (default true), the last occurrence winning, as pflag reads it."""
    value = 'true'
    for arg in args:
        if arg == '--':
            break
        name, has_value, given = arg.partition('=')
        if name == '--start-control-plane':
            value = given if has_value else 'true'
    return value in FALSE_WORDS


def witness(comm: str, argv: Sequence[str], cgroup: str = '') -> str | None:
    """The name of a process that says this node should run kube-apiserver, or None.

    `rke2 server` (the kubelet starts the apiserver from the manifest rke2 writes) and `k0s controller` (it runs
    kube-apiserver as its child). rke2 rewrites its title like k3s, and some releases titled a server `rke2 agent`
    (rke2 issue 6430): then its systemd unit, read from `/proc/<pid>/cgroup`, tells.
    """
    if comm in WITNESS_PROGRAMS:
        return comm
    words, _ = process_title(argv)
    if not words or words[0].rsplit('/', 1)[-1] != comm:
        return None
    subcommand = words[1] if len(words) > 1 else ''
    if comm == 'rke2' and (subcommand == 'server' or (subcommand == 'agent' and 'rke2-server.service' in cgroup)):
        return None if disables_apiserver(words[2:]) else 'rke2'
    if comm == 'k0s' and subcommand == 'controller':
        return 'k0s'
    return None


def disables_apiserver(args: Sequence[str]) -> bool:
    """`--disable-apiserver` of k3s and rke2 on a visible command line (their configuration is read elsewhere)."""
    value = 'false'
    for arg in args:
        if arg == '--':
            break
        name, has_value, given = arg.partition('=')
        if name == '--disable-apiserver':
            value = given if has_value else 'true'
    return value not in FALSE_WORDS


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
    witnesses: frozenset[str]  # seen running: kubelet, rke2 (server), k0s (controller)
    supervisors: tuple[tuple[str, int], ...] = ()  # (witness, pid) of the supervisors among them: rke2, k0s
    sees_others: bool = True  # init (pid 1) is listed: procfs does not hide other users' processes (hidepid)
    listed: int = 1  # processes listed at all


def scan_processes(procfs: str) -> ProcessScan:
    """One full pass over the process table."""
    return ProcessTable().scan(procfs, full=True)


# Programs that may exec() kube-apiserver in place, keeping their pid (`sh -c "exec kube-apiserver ..."`, `env`,
# `nice`...): a process seen as one of these is looked at again at every scan.
EXEC_WRAPPERS = frozenset(
    {'sh', 'bash', 'dash', 'ash', 'busybox', 'env', 'nice', 'nohup', 'ionice', 'setpriv', 'chroot', 'stdbuf', 'taskset'}
)
SUPERVISOR_NAMES = frozenset({'rke2', 'k0s'})  # executables of the supervisors that witness a control plane
# What a scan does with a process, by the name of its executable: identify it, see whether it witnesses a control
# plane, or look at it again at every scan (an exec wrapper); any other process is set aside until its pid is reused.
LOOK_CLOSER = {
    **dict.fromkeys(CANDIDATE_NAMES, 'candidate'),
    **dict.fromkeys(WITNESS_PROGRAMS | SUPERVISOR_NAMES, 'witness'),
    **dict.fromkeys(EXEC_WRAPPERS, 'wrapper'),
}
FULL_SCAN_EVERY = 10  # scans: an incremental rescan's safety net, whatever it may have missed


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
    last scan, only the pids handed out since are looked at (pids_handed_out says why that is complete).
    """

    def __init__(self) -> None:
        self._quiet: dict[str, int] = {}  # pid -> /proc/<pid> inode of a process seen to be none of those
        self._recheck: dict[str, int] = {}  # pid -> inode of the processes looked at again at every scan
        self._scans = 0
        self._pids: PidCounters | None = None  # the kernel's pid counters at the last scan
        self._listed = (1, True)  # (processes listed, pid 1 among them) at the last listing of /proc

    def scan(self, procfs: str, full: bool = False) -> ProcessScan:
        full = full or self._scans % FULL_SCAN_EVERY == 0
        self._scans += 1
        proc_fd = os.open(procfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            counters = pid_counters(proc_fd)
            new_pids = None if full else pids_handed_out(self._pids, counters)
            if new_pids is None:
                entries = _listing(proc_fd)
                self._listed = (len(entries), any(pid == '1' for pid, _ in entries))
                known = {} if full else self._quiet
            else:  # no listing: a process created since the last scan has one of the pids handed out since
                entries = [*self._recheck.items(), *_entries(proc_fd, new_pids)]
                known = {}
            scan = self._look(procfs, proc_fd, entries, known, listing=new_pids is None)
        finally:
            os.close(proc_fd)
        self._pids = counters
        return scan

    def _look(self, procfs: str, proc_fd: int, entries, known: dict[str, int], listing: bool) -> ProcessScan:
        found = []
        witnesses = set()
        supervisors: list[tuple[str, int]] = []
        quiet: dict[str, int] = {}
        recheck: dict[str, int] = {}
        for pid, inode in entries:
            if known.get(pid) == inode:
                quiet[pid] = inode
                continue
            program = _program(proc_fd, pid)
            kind = LOOK_CLOSER.get(program)
            if kind is None:  # any other program, a kernel thread, a zombie: none ever becomes an apiserver
                quiet[pid] = inode
                continue
            recheck[pid] = inode
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
        if listing:
            self._quiet = quiet  # pids no longer listed are forgotten
        else:
            self._quiet.update(quiet)
        self._recheck = recheck
        listed, sees_others = self._listed
        return ProcessScan(
            apiservers=tuple(found),
            witnesses=frozenset(witnesses),
            supervisors=tuple(supervisors),
            sees_others=sees_others,
            listed=listed,
        )


def _listing(proc_fd: int) -> list[tuple[str, int]]:
    with os.scandir(proc_fd) as listing:  # what psutil.pids() lists, without its failure on an empty listing
        return [(entry.name, entry.inode()) for entry in listing if entry.name.isdigit()]


def _entries(proc_fd: int, pids) -> list[tuple[str, int]]:
    """(pid, inode of /proc/<pid>) of those of `pids` that exist."""
    entries = []
    for pid in map(str, pids):
        try:
            entries.append((pid, os.stat(pid, dir_fd=proc_fd, follow_symlinks=False).st_ino))
        except OSError:
            continue
    return entries


MAX_NEW_PIDS = 2048  # more processes created since the last scan than this: list /proc instead


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


def is_same_process_running(process: ApiserverProcess) -> bool:
    try:
        current = psutil.Process(process.pid)
        return current.create_time() == process.create_time and current.status() != psutil.STATUS_ZOMBIE
    except PROCESS_GONE:
        return False
