"""What a process is: kube-apiserver (its program, a multi-call binary's subcommand, never text in another process's
arguments), a witness of a control plane, or neither. process_table.py decides which processes to look at."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import psutil

from .flags import effective_flags
from .procfs import process_stat

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
SUPERVISOR_NAMES = frozenset({'rke2', 'k0s'})  # executables of the supervisors that witness a control plane
COMM_MAX_LENGTH = 15  # the kernel cuts process names (comm) to 15 characters
FALSE_WORDS = frozenset({'0', 'f', 'F', 'false', 'FALSE', 'False'})  # Go's strconv.ParseBool, as pflag reads a bool


@dataclass(frozen=True)
class ApiserverProcess:
    pid: int
    start_ticks: int  # when it started (clock ticks after boot): with the pid, which process this is
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


def process_title(argv: Sequence[str]) -> tuple[list[str], bool]:
    """(the words of argv, whether it is a rewritten title): gspt writes one string with spaces, then NUL padding."""
    if argv and ' ' in argv[0] and not any(argv[1:]):
        return argv[0].split(), True
    return list(argv), False


def identify(comm: str, argv: Sequence[str], executable: str = '') -> tuple[str, tuple[str, ...], bool] | None:
    """(kind, the apiserver's arguments, whether they are hidden) when the process runs kube-apiserver, else None.

    Identity comes from what the process is (its name and program, a multi-call binary's subcommand, an apiserver's
    flags), never from text in its arguments: wrappers such as go-runner, watch-termination or `sh -c` carry the
    apiserver's flags but are not the apiserver. `executable`: the name of its executable, which names a program
    re-executed through /proc/self/exe (comm `exe`: k3s's logging and reaping child).
    """
    argv, hidden = process_title(argv)
    if not argv:
        return None
    if comm == 'exe' and executable:
        comm = executable[:COMM_MAX_LENGTH]
    program = argv[0].rsplit('/', 1)[-1]
    if comm == 'k3s-server' and program == 'k3s':  # argv[0] is the k3s the service started; comm, the symlink
        if argv[1:2] == ['init']:  # the parent that logs or reaps for the server it re-executed (--log, pid 1)
            return None
        return 'k3s', tuple(argv[2:] if argv[1:2] in (['server'], ['agent']) else argv[1:]), hidden
    if program[:COMM_MAX_LENGTH] != comm[:COMM_MAX_LENGTH]:  # psutil names a process by argv[0] past 15
        return None
    if program == APISERVER_PROGRAM:
        return 'kube-apiserver', tuple(argv[1:]), hidden
    if program.startswith(APISERVER_PROGRAM):  # a renamed build, or kops's kube-apiserver-healthcheck sidecar
        return ('kube-apiserver', tuple(argv[1:]), hidden) if runs_as_apiserver(argv[1:]) else None
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


def runs_as_apiserver(args: Sequence[str]) -> bool:
    """The command line is kube-apiserver's: it refuses to start without --etcd-servers (its storage), which only
    distributions embedding it leave out. kops's kube-apiserver-healthcheck takes --ca-cert, --client-cert..."""
    return bool(effective_flags(args).get('etcd-servers'))


def _starts_no_control_plane(args: Sequence[str]) -> bool:
    """kubelite's boolean --start-control-plane (default true)."""
    return last_bool_value(args, '--start-control-plane', 'true') in FALSE_WORDS


def last_bool_value(args: Sequence[str], flag: str, default: str) -> str:
    """The value of a boolean `flag` as pflag reads a command line: the last occurrence wins, a bare flag is true,
    nothing after `--` is a flag."""
    value = default
    for arg in args:
        if arg == '--':
            break
        name, has_value, given = arg.partition('=')
        if name == flag:
            value = given if has_value else 'true'
    return value


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
    return last_bool_value(args, '--disable-apiserver', 'false') not in FALSE_WORDS


def read_apiserver_process(procfs: str, pid: int, executable: str = '') -> ApiserverProcess | None:
    """The process `pid` as an apiserver, or None when it is something else or went away while we looked.
    `executable`: the name of its executable, when the Agent may read it.

    Its name, command line and parent come from psutil, which reads `procfs` (psutil.PROCFS_PATH, which the Agent sets
    from its procfs_path); its start in clock ticks from /proc/<pid>/stat: with the pid, which process this is, checked
    at every run by is_same_process_running (psutil's create_time moves with the wall clock)."""
    if procfs != psutil.PROCFS_PATH:
        psutil.PROCFS_PATH = procfs
    try:
        stat = process_stat(procfs, pid)
        process = psutil.Process(pid)
        with process.oneshot():
            name, argv, ppid = process.name(), process.cmdline(), process.ppid()
        parent = psutil.Process(ppid).name() if ppid else ''
    except (OSError, ValueError, psutil.Error):  # gone (NoSuchProcess, ZombieProcess), or hidden (AccessDenied)
        return None
    identity = identify(name, argv, executable)
    if identity is None:
        return None
    kind, args, hidden = identity
    return ApiserverProcess(
        pid=pid,
        start_ticks=stat.start_ticks,
        name=name,
        args=args,
        flags=effective_flags(args),
        kind=kind,
        args_hidden=hidden,
        ppid=ppid,
        parent=parent,
    )


def is_same_process_running(procfs: str, process: ApiserverProcess) -> bool:
    """The same process (pid and start time) still runs: not gone, not a zombie, its pid not reused."""
    try:
        stat = process_stat(procfs, process.pid)
    except (OSError, ValueError):
        return False
    return stat.start_ticks == process.start_ticks and stat.state not in ('Z', 'X')
