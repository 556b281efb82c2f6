"""CIS Kubernetes 1.2.31: does kube-apiserver authenticate clients with TLS certificates?

The whole runtime of the check lives in this one module so that the same file works installed from the wheel
(`datadog_checks.cis_kubernetes`) and dropped as `checks.d/cis_kubernetes.py` (the Helm chart's `datadog.checksd`).
It imports only what the Agent's embedded Python ships.

Pipeline, with plain data between the steps:
    find apiserver processes -> read their effective flags -> open the CA file as the apiserver sees it
    -> judge -> report.
"""

from __future__ import annotations

import base64
import binascii
import errno
import json
import os
import re
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import psutil

from datadog_checks.base import AgentCheck, ConfigurationError

try:  # the Agent provides this module; outside it, the stub from datadog_checks.base
    import datadog_agent
except ImportError:  # pragma: no cover - depends on where the check runs
    from datadog_checks.base.stubs import datadog_agent


# --------------------------------------------------------------------------------------------------------------
# The control, as data
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Control:
    id: str
    rule_id: str
    framework: str
    flag: str
    title: str
    rationale: str
    remediation: Mapping[str, str]
    numbering: Mapping[str, str]  # CIS Kubernetes benchmark version -> this control's number in it


CONTROL = Control(
    id='1.2.31',
    rule_id='cis-kubernetes-1.5.1-1.2.31',
    framework='cis-kubernetes',
    flag='client-ca-file',
    title='The API server should set up TLS connection for client authentication',
    rationale=(
        'With --client-ca-file set, kube-apiserver authenticates any client presenting a certificate signed by one '
        'of the authorities in that file. Without it, kubelets, controllers and administrators cannot authenticate '
        'with client certificates, and a missing or broken file stops the apiserver at its next restart.'
    ),
    # Where each distribution keeps kube-apiserver's arguments, and how a change there takes effect.
    remediation={
        'kubernetes': (
            'Set --client-ca-file=<path/to/client-ca-file> on kube-apiserver (a PEM bundle of the CA certificates '
            'that sign client certificates) wherever this node defines its arguments, then restart kube-apiserver.'
        ),
        'kubeadm': (
            'Edit the static pod manifest /etc/kubernetes/manifests/kube-apiserver.yaml on this node and set '
            '--client-ca-file=/etc/kubernetes/pki/ca.crt (or your client CA bundle); the kubelet restarts the '
            'apiserver when the manifest changes. Keep ClusterConfiguration apiServer.extraArgs in line for upgrades.'
        ),
        'kind': (
            'kind runs kubeadm inside the node container: in it (docker exec), edit '
            '/etc/kubernetes/manifests/kube-apiserver.yaml and set --client-ca-file=/etc/kubernetes/pki/ca.crt; the '
            'kubelet restarts the apiserver. For new clusters, set it through kubeadmConfigPatches in the kind config.'
        ),
        'minikube': (
            'Run `minikube start --extra-config=apiserver.client-ca-file=/var/lib/minikube/certs/ca.crt` (minikube '
            'sets it by default: remove the extra-config that overrides it); minikube restarts the apiserver.'
        ),
        'kubespray': (
            'Set client-ca-file in kube_kubeadm_apiserver_extra_args (group_vars/k8s_cluster) and re-run '
            'cluster.yml, or edit /etc/kubernetes/manifests/kube-apiserver.yaml on this node (the kubelet restarts '
            'the apiserver).'
        ),
        'kops': (
            'Set spec.kubeAPIServer.clientCAFile with `kops edit cluster` (kops sets it to /srv/kubernetes/ca.crt by '
            'default), then `kops update cluster --yes` and `kops rolling-update cluster --yes`.'
        ),
        'rke1': (
            'Set services.kube-api.extra_args.client-ca-file: /etc/kubernetes/ssl/kube-ca.pem in cluster.yml (or '
            'remove the override that empties it), then run `rke up`.'
        ),
        'rke2': (
            'RKE2 sets --client-ca-file itself: remove the kube-apiserver-arg that overrides or empties it from '
            '/etc/rancher/rke2/config.yaml, restore /var/lib/rancher/rke2/server/tls/client-ca.crt if missing, then '
            '`systemctl restart rke2-server` (RKE2 rewrites the static pod manifest).'
        ),
        'talos': (
            'Patch the machine configuration (`talosctl patch machineconfig`): remove the cluster.apiServer.extraArgs '
            'entry that overrides client-ca-file; Talos restarts the apiserver with its own client CA.'
        ),
        'k0s': (
            'k0s sets --client-ca-file itself: remove the client-ca-file override from spec.api.extraArgs in '
            '/etc/k0s/k0s.yaml, restore /var/lib/k0s/pki/ca.crt if missing, then restart the k0scontroller service.'
        ),
        'docker-desktop': (
            'Docker Desktop manages the control plane and sets --client-ca-file=/run/config/pki/ca.crt: reset the '
            'cluster (Settings > Kubernetes > Reset Kubernetes Cluster).'
        ),
        'kubernetes-the-hard-way': (
            'Set --client-ca-file=/var/lib/kubernetes/ca.pem in the kube-apiserver systemd unit '
            '(/etc/systemd/system/kube-apiserver.service), then `systemctl daemon-reload && systemctl restart '
            'kube-apiserver`.'
        ),
        'k3s': (
            'k3s sets --client-ca-file=<data-dir>/server/tls/client-ca.crt itself: remove the kube-apiserver-arg '
            'that overrides or empties client-ca-file from /etc/rancher/k3s/config.yaml, config.yaml.d/*.yaml or the '
            'k3s service command line, restore the file if missing, then `systemctl restart k3s`.'
        ),
        'microk8s': (
            'Set --client-ca-file=${SNAP_DATA}/certs/ca.crt in /var/snap/microk8s/current/args/kube-apiserver, then '
            '`microk8s stop && microk8s start`.'
        ),
        'openshift': (
            'OpenShift manages kube-apiserver through its operator: do not edit the static pod. Check '
            '`oc get kubeapiserver cluster -o yaml` and the client-ca config map in openshift-kube-apiserver, and let '
            'the operator roll out a new revision.'
        ),
        'openshift-3': (
            'Set servingInfo.clientCA (relative to the file) in /etc/origin/master/master-config.yaml, then '
            '`master-restart api`.'
        ),
        'microshift': 'MicroShift generates and manages its client CA; it cannot be configured from the node.',
    },
    numbering={
        '1.5.1': '1.2.31',
        '1.6': '1.2.31',
        '1.20': '1.2.30',
        '1.23': '1.2.28',
        '1.24': '1.2.27',
        '1.7': '1.2.27',
        '1.8': '1.2.26',
        '1.9': '1.2.25',
        '1.10': '1.2.25',
        '1.11': '1.2.25',
        '1.12': '1.2.25',
    },
)

CONTROL_TAG = f'{CONTROL.framework}:{CONTROL.id}'


# --------------------------------------------------------------------------------------------------------------
# Reading flags as kube-apiserver does (spf13/pflag with Kubernetes' word-separator normalization)
# --------------------------------------------------------------------------------------------------------------

# Flags that never take the next argument: kube-apiserver's boolean flags across releases, plus --version, whose
# value is optional (pflag NoOptDefVal). A flag missing here is read as taking a value, which can only turn a set
# --client-ca-file into "absent" (a false failure), never the reverse.
NO_VALUE_FLAGS = frozenset(
    {
        'add-dir-header',
        'aggregator-reject-forwarding-redirect',
        'allow-privileged',
        'alsologtostderr',
        'anonymous-auth',
        'audit-log-batch-throttle-enable',
        'audit-log-compress',
        'audit-log-truncate-enabled',
        'audit-webhook-batch-throttle-enable',
        'audit-webhook-truncate-enabled',
        'contention-profiling',
        'disable-http2-serving',
        'emulation-forward-compatible',
        'enable-aggregator-routing',
        'enable-bootstrap-token-auth',
        'enable-garbage-collector',
        'enable-inflight-quota-handler',
        'enable-logs-handler',
        'enable-priority-and-fairness',
        'enable-swagger-ui',
        'encryption-provider-config-automatic-reload',
        'experimental-logging-sanitization',
        'help',
        'kubelet-https',
        'log-json-split-stream',
        'log-text-split-stream',
        'logtostderr',
        'one-output',
        'permit-address-sharing',
        'permit-port-sharing',
        'profiling',
        'repair-malformed-updates',
        'runtime-config-emulation-forward-compatible',
        'send-retry-after-while-not-ready-once',
        'service-account-extend-token-expiration',
        'service-account-lookup',
        'shutdown-send-retry-after',
        'skip-headers',
        'skip-log-headers',
        'version',
        'watch-cache',
    }
)
# kube-apiserver's one-letter flags: -v takes a value, -h does not.
SHORTHAND_FLAGS = {'v': ('v', True), 'h': ('help', False)}


def normalize_flag_name(name: str) -> str:
    return name.replace('_', '-')


def parse_flags(args: Sequence[str]) -> list[tuple[str, str]]:
    """Every (flag, value) occurrence in `args`, the arguments after the program name, as pflag reads them.

    Positional arguments are skipped; parsing stops at `--`. Tokens pflag would reject (and so a running apiserver
    cannot have) are skipped.
    """
    occurrences: list[tuple[str, str]] = []
    i, n = 0, len(args)
    while i < n:
        token = args[i]
        i += 1
        if len(token) < 2 or token[0] != '-':
            continue
        if token == '--':
            break
        if token[1] == '-':
            name, has_value, value = token[2:].partition('=')
            if not name or name[0] in '-=':
                continue
            name = normalize_flag_name(name)
            if not has_value:
                if name in NO_VALUE_FLAGS:
                    value = 'true'
                elif i < n:
                    value = args[i]
                    i += 1
                else:
                    continue
            occurrences.append((name, value))
            continue
        shorthands = token[1:]
        while shorthands:
            name, takes_value = SHORTHAND_FLAGS.get(shorthands[0], (None, False))
            if name is None:
                break
            if len(shorthands) > 2 and shorthands[1] == '=':
                occurrences.append((name, shorthands[2:]))
                break
            if not takes_value:
                occurrences.append((name, 'true'))
                shorthands = shorthands[1:]
                continue
            if len(shorthands) > 1:
                occurrences.append((name, shorthands[1:]))
            elif i < n:
                occurrences.append((name, args[i]))
                i += 1
            break
    return occurrences


def effective_flags(args: Sequence[str]) -> dict[str, str]:
    """Each flag's effective value in `args`: the last occurrence wins."""
    return dict(parse_flags(args))


# Values of flags named like these never leave the check: not in events, messages or logs.
SECRET_FLAG_WORDS = ('token', 'password', 'passwd', 'pwd', 'secret', 'key', 'credential')


def secret_flag_values(flags: Mapping[str, str]) -> list[str]:
    return [
        value
        for name, value in flags.items()
        if value and name not in NO_VALUE_FLAGS and any(word in name for word in SECRET_FLAG_WORDS)
    ]


# --------------------------------------------------------------------------------------------------------------
# Finding kube-apiserver processes
# --------------------------------------------------------------------------------------------------------------

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


def read_proc_bytes(procfs: str, pid: int, name: str, limit: int = 1 << 20) -> bytes:
    """At most `limit` bytes of the file `name` of process `pid`; OSError when the process is gone."""
    fd = os.open(f'{procfs}/{pid}/{name}', os.O_RDONLY | os.O_CLOEXEC)
    try:
        return _read_at_most(fd, limit)
    finally:
        os.close(fd)


def split_cmdline(raw: bytes) -> list[str]:
    """argv exactly as the kernel holds it: NUL-separated, empty arguments kept."""
    if not raw:
        return []
    if raw.endswith(b'\0'):
        raw = raw[:-1]
    return [os.fsdecode(arg) for arg in raw.split(b'\0')]


PROCESS_GONE = (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, ProcessLookupError, OSError)


def read_apiserver_process(procfs: str, pid: int) -> ApiserverProcess | None:
    """The process `pid` as an apiserver, or None when it is something else or went away while we looked."""
    try:
        comm = _process_name(procfs, pid)
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
        parent=_process_name(procfs, ppid),
    )


def _process_name(procfs: str, pid: int) -> str:
    """The process's name (comm), '' when it is gone."""
    try:
        return read_proc_bytes(procfs, pid, 'comm', limit=64).rstrip(b'\n').decode('utf-8', 'replace')
    except OSError:
        return ''


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


# --------------------------------------------------------------------------------------------------------------
# The CA file, as the apiserver sees it
# --------------------------------------------------------------------------------------------------------------

MAX_SYMLINKS = 40  # as the kernel's path walk


@dataclass(frozen=True)
class CaFileContent:
    """What opening the CA file inside the apiserver's root gave: its bytes, or why there are none."""

    data: bytes | None
    problem: str | None = None  # missing | not_regular | permission | too_large | error
    detail: str = ''


_ERRNO_PROBLEMS = {
    errno.ENOENT: ('missing', 'does not exist'),
    errno.ENOTDIR: ('missing', 'a component of the path is not a directory'),
    errno.ELOOP: ('missing', 'too many levels of symbolic links'),
    errno.EACCES: ('permission', 'permission denied to the Agent'),
    errno.EPERM: ('permission', 'permission denied to the Agent'),
}


def _walk_in_root(root_fd: int, start_fd: int, path: str) -> tuple[int, str, os.stat_result]:
    """Resolve `path` as a process whose root is `root_fd` and working directory `start_fd` would.

    Returns (parent directory fd, final name, lstat of the final entry); the caller closes the fd. Every step is
    opened with O_NOFOLLOW relative to the previous one, symbolic links are read and resolved here, and `..` stops
    at the root: nothing outside the apiserver's root is ever reached.
    """
    root_st = os.fstat(root_fd)
    root_id = (root_st.st_dev, root_st.st_ino)
    current = os.dup(root_fd if path.startswith('/') else start_fd)
    parts = [part for part in path.split('/') if part not in ('', '.')]
    parts.reverse()
    links = 0
    try:
        while True:
            if not parts:  # the path names a directory (or the root itself)
                return current, '.', os.fstat(current)
            part = parts.pop()
            if part == '..':
                st = os.fstat(current)
                if (st.st_dev, st.st_ino) != root_id:
                    parent = os.open('..', os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=current)
                    os.close(current)
                    current = parent
                continue
            st = os.stat(part, dir_fd=current, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, 'too many levels of symbolic links')
                target = os.readlink(part, dir_fd=current)
                if target.startswith('/'):
                    os.close(current)
                    current = os.dup(root_fd)
                parts.extend(reversed([p for p in target.split('/') if p not in ('', '.')]))
                continue
            if not parts:
                return current, part, st
            if not stat.S_ISDIR(st.st_mode):
                raise OSError(errno.ENOTDIR, 'not a directory')
            nxt = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=current)
            os.close(current)
            current = nxt
    except BaseException:
        os.close(current)
        raise


def read_file_in_root(root: str, cwd: str, path: str, max_size: int) -> CaFileContent:
    """Read `path` as the process whose root and working directory are the links `root` and `cwd` would.

    Only a regular file is opened (a FIFO or device never blocks the check), and at most `max_size` bytes are read.
    """
    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        problem, detail = _ERRNO_PROBLEMS.get(e.errno, ('error', os.strerror(e.errno or 0)))
        if problem == 'missing':
            return CaFileContent(None, 'error', "the apiserver's root is gone")
        return CaFileContent(None, problem, f"cannot open the apiserver's root {root}: {detail}")
    cwd_fd = -1
    parent_fd = -1
    try:
        if not path.startswith('/'):
            cwd_fd = os.open(cwd, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        parent_fd, name, st = _walk_in_root(root_fd, cwd_fd, path)
        if not stat.S_ISREG(st.st_mode):
            return CaFileContent(None, 'not_regular', f'is not a regular file ({_file_kind(st.st_mode)})')
        if st.st_size > max_size:
            return CaFileContent(None, 'too_large', f'is {st.st_size} bytes, over max_ca_file_size ({max_size})')
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(opened.st_mode):
                return CaFileContent(None, 'error', 'was replaced while being opened')
            data = _read_at_most(fd, max_size + 1)
        finally:
            os.close(fd)
        if len(data) > max_size:
            return CaFileContent(None, 'too_large', f'is over max_ca_file_size ({max_size} bytes)')
        return CaFileContent(data)
    except OSError as e:
        problem, detail = _ERRNO_PROBLEMS.get(e.errno, ('error', os.strerror(e.errno or 0)))
        return CaFileContent(None, problem, detail)
    finally:
        for fd in (parent_fd, cwd_fd, root_fd):
            if fd >= 0:
                os.close(fd)


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(1 << 20, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b''.join(chunks)


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, 'a directory'),
        (stat.S_ISFIFO, 'a FIFO'),
        (stat.S_ISCHR, 'a character device'),
        (stat.S_ISBLK, 'a block device'),
        (stat.S_ISSOCK, 'a socket'),
    ):
        if test(mode):
            return kind
    return 'not a regular file'


# --------------------------------------------------------------------------------------------------------------
# Distributions: where each keeps the effective --client-ca-file
# --------------------------------------------------------------------------------------------------------------

# Paths in kube-apiserver's flags that tell which distribution started it (the first match wins).
DISTRIBUTION_PATHS = (
    ('/var/lib/rancher/rke2/', 'rke2'),
    ('/var/lib/minikube/', 'minikube'),
    ('/srv/kubernetes/', 'kops'),
    ('/etc/kubernetes/ssl/kube-', 'rke1'),
    ('/etc/kubernetes/ssl/', 'kubespray'),
    ('/system/secrets/kubernetes/', 'talos'),
    ('/var/lib/k0s/', 'k0s'),
    ('/run/config/pki/', 'docker-desktop'),
    ('/var/lib/kubernetes/', 'kubernetes-the-hard-way'),
    ('/etc/kubernetes/pki/', 'kubeadm'),
)
KUBEADM_MANIFEST = '/etc/kubernetes/manifests/kube-apiserver.yaml'
RKE2_MANIFEST = '/var/lib/rancher/rke2/agent/pod-manifests/kube-apiserver.yaml'
# Distributions whose kubelet starts kube-apiserver from a static pod manifest file, and where that file is.
STATIC_POD_MANIFESTS = {
    'kubeadm': KUBEADM_MANIFEST,
    'kind': KUBEADM_MANIFEST,
    'minikube': KUBEADM_MANIFEST,
    'kubespray': KUBEADM_MANIFEST,
    'rke2': RKE2_MANIFEST,
}
K3S_DATA_DIR = '/var/lib/rancher/k3s'
K3S_CONFIG = '/etc/rancher/k3s/config.yaml'
K3S_UNITS = ('/etc/systemd/system/k3s.service', '/lib/systemd/system/k3s.service')
MICROK8S_ARGS_FILE = '/var/snap/microk8s/current/args/kube-apiserver'
MICROK8S_ENVIRONMENT = {'SNAP': '/snap/microk8s/current', 'SNAP_DATA': '/var/snap/microk8s/current'}
CONFIG_FILE_SIZE = 1 << 20
SHELL_VARIABLE = re.compile(r'\$\{(\w+)\}|\$(\w+)')


@dataclass(frozen=True)
class ClientCaSetting:
    """The effective --client-ca-file of one apiserver and where it comes from."""

    value: str | None  # None: not set
    source: str  # process | config_file | manifest | distribution_default
    distribution: str
    origin: str = ''  # the file the value was read from, for messages
    unjudgeable: str = ''  # why the setting cannot be judged from this node


def detect_distribution(process: ApiserverProcess, parent_root: str) -> str:
    if process.kind != 'kube-apiserver':
        return process.kind
    if 'openshift-config' in process.flags:
        return 'openshift'
    if process.parent == 'k0s':
        return 'k0s'
    paths = [value for value in process.flags.values() if value.startswith('/')]
    for prefix, name in DISTRIBUTION_PATHS:
        if any(path.startswith(prefix) for path in paths):
            if name == 'kubeadm' and os.path.isdir(f'{parent_root}/kind'):
                return 'kind'  # kubeadm inside a kind node container
            return name
    return 'kubernetes'


def read_text_in_root(root: str, cwd: str, path: str) -> tuple[str | None, str]:
    """(text, '') or (None, why) for a configuration file read as the process whose root and cwd are given.

    PermissionError when the Agent may not read it: a setting it holds can then not be known.
    """
    content = read_file_in_root(root, cwd, path, CONFIG_FILE_SIZE)
    if content.problem == 'permission':
        raise PermissionError(f'{path}: {content.detail}')
    if content.data is None:
        return None, content.detail
    return content.data.decode('utf-8', 'replace'), ''


def list_dir_in_root(root: str, path: str) -> list[str]:
    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return []
    parent_fd = -1
    try:
        parent_fd, name, st = _walk_in_root(root_fd, root_fd, path)
        if not stat.S_ISDIR(st.st_mode):
            return []
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)
    except OSError:
        return []
    finally:
        for fd in (parent_fd, root_fd):
            if fd >= 0:
                os.close(fd)


def load_yaml(text: str):
    import yaml  # shipped with the Agent; imported only where a distribution keeps YAML configuration

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _mapping(value) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _as_list(value) -> list[str]:
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def client_ca_setting(procfs: str, process: ApiserverProcess) -> ClientCaSetting:
    """The effective --client-ca-file of `process`, from wherever its distribution keeps it."""
    distribution = detect_distribution(process, f'{procfs}/{process.ppid}/root')
    try:
        return _client_ca_setting(procfs, process, distribution)
    except PermissionError as e:
        return ClientCaSetting(
            None,
            'config_file',
            distribution,
            unjudgeable=f'the Agent may not read its configuration ({e}). Run the Agent as root (in Kubernetes: '
            'hostPID, and privileged or CAP_SYS_PTRACE with CAP_DAC_READ_SEARCH)',
        )


def _client_ca_setting(procfs: str, process: ApiserverProcess, distribution: str) -> ClientCaSetting:
    base = f'{procfs}/{process.pid}'
    if process.kind == 'k3s':
        return _k3s_setting(base, process)
    if process.kind == 'microk8s':
        return _microk8s_setting(procfs, process)
    if process.kind == 'microshift':
        return ClientCaSetting(
            None,
            'distribution_default',
            'microshift',
            unjudgeable='MicroShift embeds kube-apiserver and generates its client CA internally; its configuration '
            'does not name the client CA, so CIS 1.2.31 cannot be judged from the node',
        )
    if process.kind == 'openshift-3':
        config = process.flags.get('config', '/etc/origin/master/master-config.yaml')
        return _openshift_setting(base, config, ('kubernetesMasterConfig', 'apiServerArguments'), 'openshift-3')
    value = process.flags.get(CONTROL.flag)
    if value is None and 'openshift-config' in process.flags:
        return _openshift_setting(base, process.flags['openshift-config'], ('apiServerArguments',), distribution)
    return ClientCaSetting(value, 'process', distribution)


def _openshift_setting(base: str, config_path: str, arguments_at: tuple[str, ...], distribution: str):
    """OpenShift: the client CA of its master configuration; a relative path is relative to that file."""
    text, why = read_text_in_root(f'{base}/root', f'{base}/cwd', config_path)
    config = load_yaml(text) if text is not None else None
    if not isinstance(config, Mapping):
        reason = why or 'not a YAML or JSON mapping'
        return ClientCaSetting(
            None, 'config_file', distribution, config_path, f'its configuration {config_path} cannot be read: {reason}'
        )
    arguments = config
    for key in arguments_at:
        arguments = _mapping(arguments.get(key))
    values = _as_list(arguments.get(CONTROL.flag))
    value = values[-1] if values else _mapping(config.get('servingInfo')).get('clientCA')
    if value is not None and value != '' and not str(value).startswith('/'):
        value = os.path.join(os.path.dirname(config_path), str(value))
    return ClientCaSetting(None if value is None else str(value), 'config_file', distribution, config_path)


def _k3s_setting(base: str, process: ApiserverProcess) -> ClientCaSetting:
    """k3s: its own default under data-dir, then kube-apiserver-arg from its configuration and command line."""
    root, cwd = f'{base}/root', f'{base}/cwd'
    args, args_origin = list(process.args), 'the k3s command line'
    if process.args_hidden:  # k3s rewrote its process title: its arguments are those of the service that started it
        args, args_origin = _k3s_unit_arguments(root, cwd)
    config_path = (_k3s_option(args, 'config', 'c') or [K3S_CONFIG])[-1]
    config: dict = {}
    for path in [config_path] + [
        f'{config_path}.d/{name}' for name in list_dir_in_root(root, f'{config_path}.d') if name.endswith('.yaml')
    ]:
        text, _ = read_text_in_root(root, cwd, path)
        document = load_yaml(text) if text else None
        for key, value in _mapping(document).items():
            if str(key).endswith('+'):  # k3s drop-ins append to a list with `key+:`
                config[key[:-1]] = _as_list(config.get(key[:-1])) + _as_list(value)
            else:
                config[key] = value
    data_dir = (_k3s_option(args, 'data-dir', 'd') or [config.get('data-dir') or K3S_DATA_DIR])[-1]
    cli_args = _k3s_option(args, 'kube-apiserver-arg')
    user_args = _as_list(config.get('kube-apiserver-arg')) + cli_args
    flags = effective_flags(['--' + arg.lstrip('-') for arg in user_args])
    if CONTROL.flag in flags:
        from_cli = CONTROL.flag in effective_flags(['--' + arg.lstrip('-') for arg in cli_args])
        origin = args_origin if from_cli else config_path
        source = 'process' if from_cli and not process.args_hidden else 'config_file'
        return ClientCaSetting(flags[CONTROL.flag], source, 'k3s', origin)
    return ClientCaSetting(f'{data_dir}/server/tls/client-ca.crt', 'distribution_default', 'k3s', 'the k3s default')


def _k3s_option(args: Sequence[str], *names: str) -> list[str]:
    """Every value given to k3s's option `names` (--name=value, --name value, -n value), in order.

    Read token by token, so an option of k3s's own whose arity this check does not know cannot hide one.
    """
    spellings = {('--' if len(name) > 1 else '-') + name for name in names}
    values = []
    for i, token in enumerate(args):
        if token == '--':
            break
        name, has_value, value = token.partition('=')
        if name in spellings:
            if has_value:
                values.append(value)
            elif i + 1 < len(args):
                values.append(args[i + 1])
    return values


def _k3s_unit_arguments(root: str, cwd: str) -> tuple[list[str], str]:
    import shlex

    for unit in K3S_UNITS:
        text, _ = read_text_in_root(root, cwd, unit)
        if text is None:
            continue
        command = _unit_exec_start(text)
        try:
            words = shlex.split(command)
        except ValueError:
            continue
        if 'server' in words:
            return words[words.index('server') + 1 :], unit
    return [], 'no k3s service file'


def _unit_exec_start(unit: str) -> str:
    """The ExecStart= command of a systemd unit, its continuation lines joined."""
    lines = iter(unit.splitlines())
    for line in lines:
        if line.strip().startswith('ExecStart='):
            command = line.strip()[len('ExecStart=') :]
            while command.endswith('\\'):
                command = command[:-1] + ' ' + next(lines, '').strip()
            return command.lstrip('-@+!')
    return ''


def _microk8s_setting(procfs: str, process: ApiserverProcess) -> ClientCaSetting:
    """MicroK8s: kubelite reads kube-apiserver's flags from an arguments file, with snap variables in values."""
    import shlex

    root, cwd = f'{procfs}/{process.pid}/root', f'{procfs}/{process.pid}/cwd'
    path = process.flags.get('apiserver-args-file') or MICROK8S_ARGS_FILE
    environment = {**MICROK8S_ENVIRONMENT, **_process_environment(procfs, process.pid)}
    text, why = read_text_in_root(root, cwd, path)
    if text is None:
        return ClientCaSetting(None, 'config_file', 'microk8s', path, f'its arguments file {path} {why}')
    tokens = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            try:
                words = shlex.split(line)
            except ValueError:
                continue
            tokens += [SHELL_VARIABLE.sub(lambda m: environment.get(m[1] or m[2], m[0]), word) for word in words]
    return ClientCaSetting(effective_flags(tokens).get(CONTROL.flag), 'config_file', 'microk8s', path)


def _process_environment(procfs: str, pid: int) -> dict[str, str]:
    """The environment the process started with."""
    try:
        raw = read_proc_bytes(procfs, pid, 'environ')
    except OSError:
        return {}
    pairs = (item.partition(b'=') for item in raw.split(b'\0') if b'=' in item)
    return {os.fsdecode(key): os.fsdecode(value) for key, _, value in pairs}


def manifest_client_ca(root: str, path: str) -> tuple[bool, str | None]:
    """(whether the static pod manifest exists, its effective --client-ca-file) as read through `root`; a manifest
    the Agent may not read counts as absent (nothing to compare with)."""
    try:
        text, _ = read_text_in_root(root, root, path)
    except PermissionError:
        return False, None
    if text is None:
        return False, None
    document = _mapping(load_yaml(text))
    containers = [c for c in _mapping(document.get('spec')).get('containers') or [] if isinstance(c, Mapping)]
    container = next((c for c in containers if c.get('name') == 'kube-apiserver'), containers[0] if containers else {})
    argv = _as_list(container.get('command')) + _as_list(container.get('args'))
    if argv and argv[0].rsplit('/', 1)[-1].startswith(APISERVER_PROGRAM):
        argv = argv[1:]
    return True, effective_flags(argv).get(CONTROL.flag)


# --------------------------------------------------------------------------------------------------------------
# What the CA bundle holds (pure)
# --------------------------------------------------------------------------------------------------------------

# Go's pem.Decode: a block is BEGIN/END lines of the same type; text around and between blocks is ignored.
PEM_BLOCK = re.compile(rb'-----BEGIN ([^\r\n-]*)-----\r?\n(.*?)-----END \1-----', re.DOTALL)


@dataclass(frozen=True)
class BundleCertificate:
    subject: str
    is_ca: bool
    not_before: float  # POSIX timestamps
    not_after: float


@dataclass(frozen=True)
class CaBundle:
    certificates: tuple[BundleCertificate, ...]
    unparseable: int  # CERTIFICATE blocks that do not parse: the apiserver refuses to start on them

    @property
    def ca_certificates(self) -> tuple[BundleCertificate, ...]:
        return tuple(cert for cert in self.certificates if cert.is_ca)


def ca_bundle_from_pem(data: bytes) -> CaBundle:
    certificates = []
    unparseable = 0
    for block_type, body in PEM_BLOCK.findall(data):
        if block_type != b'CERTIFICATE':
            continue
        try:
            der = base64.b64decode(b''.join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            continue  # pem.Decode skips a block whose body is not base64
        try:
            certificates.append(parse_certificate(der))
        except ValueError:
            unparseable += 1
    return CaBundle(certificates=tuple(certificates), unparseable=unparseable)


# A strict DER reader for what the verdict needs from an X.509 certificate. It stands in for cryptography, whose
# import alone costs the Agent 14 MB; like Go's x509.ParseCertificate it refuses anything that is not well-formed DER
# of the Certificate structure, so a certificate the apiserver would refuse is never counted as valid.

OID_BASIC_CONSTRAINTS = '2.5.29.19'
OID_COMMON_NAME = '2.5.4.3'
OID_RSA = '1.2.840.113549.1.1.1'
OID_EC = '1.2.840.10045.2.1'
# The named curves Go accepts, as (p, b) of y^2 = x^3 - 3x + b mod p: P-224, P-256, P-384, P-521. Go refuses any
# other curve and a point off its curve.
EC_CURVES = {
    '1.3.132.0.33': (2**224 - 2**96 + 1, 0xB4050A850C04B3ABF54132565044B0B7D7BFD8BA270B39432355FFB4),
    '1.2.840.10045.3.1.7': (
        2**256 - 2**224 + 2**192 + 2**96 - 1,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    ),
    '1.3.132.0.34': (
        2**384 - 2**128 - 2**96 + 2**32 - 1,
        0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
    ),
    '1.3.132.0.35': (
        2**521 - 1,
        0x0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00,
    ),
}
OID_SUBJECT_ALT_NAME = '2.5.29.17'
OID_ISSUER_ALT_NAME = '2.5.29.18'
OID_PRIVATE_KEY_USAGE_PERIOD = '2.5.29.16'
OID_KEY_USAGE = '2.5.29.15'
OID_EXTENDED_KEY_USAGE = '2.5.29.37'
OID_SUBJECT_KEY_ID = '2.5.29.14'
OID_AUTHORITY_KEY_ID = '2.5.29.35'
PRINTABLE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")
# The string types Go reads in names (others make x509.ParseCertificate fail), with their decodings.
STRING_TAGS = {0x0C: 'utf-8', 0x13: 'ascii', 0x16: 'ascii', 0x14: 'latin-1', 0x1E: 'utf-16-be', 0x12: 'ascii'}
OID_ED25519 = '1.3.101.112'
# Extensions Go parses into fields: a value that is not a SEQUENCE of SEQUENCEs makes parsing fail.
OIDS_SEQUENCE_OF_SEQUENCES = frozenset(
    {'2.5.29.31', '2.5.29.32', '1.3.6.1.5.5.7.1.1'}  # CRL distribution points, certificate policies, AIA
)
OID_NAME_CONSTRAINTS = '2.5.29.30'
SEQUENCE, SET, INTEGER, BIT_STRING, OCTET_STRING, OID, BOOLEAN, UTC_TIME, GENERALIZED_TIME = (
    0x30,
    0x31,
    0x02,
    0x03,
    0x04,
    0x06,
    0x01,
    0x17,
    0x18,
)


def _der_elements(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) pairs that exactly fill `data`, or ValueError for anything but minimal definite DER."""
    elements = []
    i, n = 0, len(data)
    while i < n:
        tag = data[i]
        if tag & 0x1F == 0x1F or i + 1 >= n:
            raise ValueError('bad DER tag')
        length = data[i + 1]
        i += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or i + count > n or data[i] == 0:
                raise ValueError('bad DER length')
            length = int.from_bytes(data[i : i + count], 'big')
            if length < 0x80:
                raise ValueError('non-minimal DER length')
            i += count
        if i + length > n:
            raise ValueError('truncated DER')
        elements.append((tag, data[i : i + length]))
        i += length
    return elements


def _expect(element: tuple[int, bytes], tag: int) -> bytes:
    if element[0] != tag:
        raise ValueError(f'expected DER tag {tag:#x}, got {element[0]:#x}')
    return element[1]


def _der_integer(content: bytes) -> int:
    if not content or (len(content) > 1 and (content[0], content[1] & 0x80) in ((0, 0), (0xFF, 0x80))):
        raise ValueError('bad DER integer')
    return int.from_bytes(content, 'big', signed=True)


def _oid(content: bytes) -> str:
    if not content or content[-1] & 0x80:
        raise ValueError('bad OID')
    arcs, value = [], 0
    for i, byte in enumerate(content):
        if value == 0 and byte == 0x80 and (i == 0 or not content[i - 1] & 0x80):
            raise ValueError('non-minimal OID arc')
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return '.'.join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def _time(element: tuple[int, bytes]) -> float:
    tag, content = element
    text = content.decode('ascii', 'replace')
    if tag == UTC_TIME and len(text) == 13:
        year = int(text[:2]) if text[:2].isdigit() else -1
        text = ('19' if year >= 50 else '20') + text
    elif tag != GENERALIZED_TIME or len(text) != 15:
        raise ValueError('bad certificate time')
    if not text.endswith('Z') or not text[:-1].isdigit():
        raise ValueError('bad certificate time')
    fields = (text[0:4], text[4:6], text[6:8], text[8:10], text[10:12], text[12:14])
    return datetime(*map(int, fields), tzinfo=UTC).timestamp()  # ValueError for an impossible date


def _string(element: tuple[int, bytes]) -> str:
    tag, content = element
    if tag not in STRING_TAGS:
        raise ValueError('unsupported string type in name')
    if (tag == 0x13 and not PRINTABLE.issuperset(content)) or (tag == 0x12 and not set(content) <= set(b'0123456789 ')):
        raise ValueError('bad PrintableString or NumericString')
    if tag == 0x1E and len(content) % 2:
        raise ValueError('bad BMPString')
    return content.decode(STRING_TAGS[tag])  # strict: UnicodeError when malformed


def _bit_string(element: tuple[int, bytes]) -> bytes:
    content = _expect(element, BIT_STRING)
    if not content or content[0] > 7 or (len(content) == 1 and content[0]) or content[-1] & ((1 << content[0]) - 1):
        raise ValueError('bad BIT STRING')
    return content


def _common_name(name: bytes) -> str:
    common_name = ''
    for rdn in _der_elements(name):
        attributes = _der_elements(_expect(rdn, SET))
        if not attributes:
            raise ValueError('empty relative distinguished name')
        for attribute in attributes:
            kind, value = _der_elements(_expect(attribute, SEQUENCE))
            text = _string(value)
            if _oid(_expect(kind, OID)) == OID_COMMON_NAME:
                common_name = text
    return f'CN={common_name}' if common_name else '<no common name>'


def _well_formed(content: bytes) -> None:
    """Every constructed element, at any depth, holds well-formed DER."""
    for tag, inner in _der_elements(content):
        if tag & 0x20:
            _well_formed(inner)


def _extensions_say_ca(content: bytes) -> bool:
    """Validate the [3] extensions; whether basicConstraints says CA:TRUE."""
    (extensions,) = _der_elements(content)
    is_ca = False
    seen = set()
    for extension in _der_elements(_expect(extensions, SEQUENCE)):
        parts = _der_elements(_expect(extension, SEQUENCE))
        if len(parts) not in (2, 3) or (len(parts) == 3 and _expect(parts[1], BOOLEAN) != b'\xff'):
            raise ValueError('bad extension')
        oid = _oid(_expect(parts[0], OID))
        if oid in seen:
            raise ValueError('duplicate extension')
        seen.add(oid)
        is_ca = _check_extension(oid, _expect(parts[-1], OCTET_STRING)) or is_ca
    return is_ca


def _check_extension(oid: str, value: bytes) -> bool:
    """Validate the extensions Go parses; returns whether basicConstraints says CA:TRUE."""
    (element,) = _der_elements(value)
    _well_formed(value)
    if oid == OID_BASIC_CONSTRAINTS:
        constraints = _der_elements(_expect(element, SEQUENCE))
        is_ca = bool(constraints) and constraints[0][0] == BOOLEAN
        if is_ca:
            if constraints[0][1] != b'\xff':
                raise ValueError('bad basicConstraints')
            constraints = constraints[1:]
        if len(constraints) > 1 or (constraints and _der_integer(_expect(constraints[0], INTEGER)) < 0):
            raise ValueError('bad basicConstraints')
        return is_ca
    if oid in (OID_SUBJECT_ALT_NAME, OID_ISSUER_ALT_NAME):
        names = _der_elements(_expect(element, SEQUENCE))
        if not names or any(tag & 0x1F > 8 or tag & 0xC0 != 0x80 for tag, _ in names):
            raise ValueError('bad subjectAltName')
        for tag, content in names:
            if tag in (0x81, 0x82, 0x86):  # rfc822Name, dNSName, URI: IA5String
                content.decode('ascii')
            elif tag == 0x87 and len(content) not in (4, 16):
                raise ValueError('bad IP address in subjectAltName')
    elif oid == OID_KEY_USAGE:
        _bit_string(element)
    elif oid in OIDS_SEQUENCE_OF_SEQUENCES:
        for item in _der_elements(_expect(element, SEQUENCE)):
            _expect(item, SEQUENCE)
    elif oid == OID_NAME_CONSTRAINTS:
        _expect(element, SEQUENCE)
    elif oid == OID_PRIVATE_KEY_USAGE_PERIOD and any(
        tag not in (0x80, 0x81) for tag, _ in _der_elements(_expect(element, SEQUENCE))
    ):
        raise ValueError('bad privateKeyUsagePeriod')
    elif oid == OID_EXTENDED_KEY_USAGE:
        for usage in _der_elements(_expect(element, SEQUENCE)):
            _oid(_expect(usage, OID))
    elif oid == OID_SUBJECT_KEY_ID:
        _expect(element, OCTET_STRING)
    elif oid == OID_AUTHORITY_KEY_ID and any(
        tag not in (0x80, 0xA1, 0x82) for tag, _ in _der_elements(_expect(element, SEQUENCE))
    ):
        raise ValueError('bad authorityKeyIdentifier')
    return False


def _algorithm(element: tuple[int, bytes]) -> bytes:
    parts = _der_elements(_expect(element, SEQUENCE))
    if not 1 <= len(parts) <= 2:
        raise ValueError('bad algorithm identifier')
    _oid(_expect(parts[0], OID))
    return element[1]


def _check_public_key(spki: bytes) -> None:
    algorithm, key = _der_elements(spki)
    _algorithm(algorithm)
    algorithm = _der_elements(algorithm[1])
    key = _bit_string(key)
    if key[0] != 0:
        raise ValueError('bad public key')
    kind = _oid(_expect(algorithm[0], OID))
    if kind == OID_RSA:
        if algorithm[1:] != [(0x05, b'')]:
            raise ValueError('RSA key without NULL parameters')
        (rsa_key,) = _der_elements(key[1:])
        modulus, exponent = _der_elements(_expect(rsa_key, SEQUENCE))
        if _der_integer(_expect(modulus, INTEGER)) <= 0 or _der_integer(_expect(exponent, INTEGER)) <= 1:
            raise ValueError('bad RSA public key')
    elif kind == OID_EC:
        curve = EC_CURVES.get(_oid(_expect(algorithm[1], OID))) if len(algorithm) == 2 else None
        if curve is None:
            raise ValueError('unsupported elliptic curve')
        p, b = curve
        size = (p.bit_length() + 7) // 8
        if len(key) != 2 + 2 * size or key[1] != 0x04:
            raise ValueError('bad EC public key')
        x, y = int.from_bytes(key[2 : 2 + size], 'big'), int.from_bytes(key[2 + size :], 'big')
        if x >= p or y >= p or (y * y - (x * x * x - 3 * x + b)) % p:
            raise ValueError('EC public key is not on its curve')
    elif kind != OID_ED25519 or len(algorithm) != 1 or len(key) != 33:
        raise ValueError('unsupported public key algorithm')  # a CA whose key Go cannot use verifies nothing


def parse_certificate(der: bytes) -> BundleCertificate:
    """What the verdict needs from one DER certificate; ValueError when it is not a well-formed certificate."""
    try:
        return _parse_certificate(der)
    except (IndexError, TypeError, UnicodeError, OverflowError) as e:  # malformed input reaching a lookup or decode
        raise ValueError(f'malformed certificate: {e}') from None


def _parse_certificate(der: bytes) -> BundleCertificate:
    (certificate,) = _der_elements(der) or [(0, b'')]
    tbs, signature_algorithm, signature = _der_elements(_expect(certificate, SEQUENCE))
    outer_algorithm = _algorithm(signature_algorithm)
    if _bit_string(signature)[0] != 0:
        raise ValueError('bad signature')
    fields = _der_elements(_expect(tbs, SEQUENCE))
    version = 0
    if fields and fields[0][0] == 0xA0:
        (version_element,) = _der_elements(fields.pop(0)[1])
        version = _der_integer(_expect(version_element, INTEGER))
        if version not in (1, 2):  # v1 is encoded by omission
            raise ValueError('bad certificate version')
    if len(fields) < 6:
        raise ValueError('truncated certificate')
    serial, algorithm, issuer, validity, subject, spki, *optional = fields
    if _der_integer(_expect(serial, INTEGER)) < 0:
        raise ValueError('negative serial number')
    if _algorithm(algorithm) != outer_algorithm:
        raise ValueError('inner and outer signature algorithms differ')
    _common_name(_expect(issuer, SEQUENCE))
    times = _der_elements(_expect(validity, SEQUENCE))
    if len(times) != 2:
        raise ValueError('bad validity')
    not_before, not_after = map(_time, times)
    _check_public_key(_expect(spki, SEQUENCE))
    is_ca = extensions_read = False
    for tag, content in optional:
        if tag in (0x81, 0x82) and version >= 1 and not extensions_read:  # issuer/subject unique IDs
            _bit_string((BIT_STRING, content))
            continue
        if tag != 0xA3 or version != 2 or extensions_read:
            raise ValueError('unexpected data in certificate')
        extensions_read = True
        is_ca = _extensions_say_ca(content)
    return BundleCertificate(
        subject=_common_name(_expect(subject, SEQUENCE)), is_ca=is_ca, not_before=not_before, not_after=not_after
    )


# --------------------------------------------------------------------------------------------------------------
# Judging (pure)
# --------------------------------------------------------------------------------------------------------------

SECONDS_PER_DAY = 86400.0
# Worst first when several apiserver processes are judged on one node.
STATUS_SEVERITY = {AgentCheck.CRITICAL: 3, AgentCheck.UNKNOWN: 2, AgentCheck.WARNING: 1, AgentCheck.OK: 0}


# A finding's status decides compliance: WARNING still passes the control, UNKNOWN is not judged.
COMPLIANT_BY_STATUS = {AgentCheck.OK: True, AgentCheck.WARNING: True, AgentCheck.CRITICAL: False}


@dataclass(frozen=True)
class Finding:
    """The verdict for one apiserver."""

    status: int
    reason: str  # one line, leads with the verdict
    process: ApiserverProcess | None = None
    ca_file: str | None = None
    bundle: CaBundle | None = None
    days_left: float | None = None
    distribution: str = 'kubernetes'
    source: str = 'process'

    @property
    def compliant(self) -> bool | None:
        return COMPLIANT_BY_STATUS.get(self.status)


def judge(
    process: ApiserverProcess | None,
    setting: ClientCaSetting,
    content: CaFileContent | None,
    bundle: CaBundle | None,
    now: float,
    days_warning: int,
) -> Finding:
    """The verdict for one apiserver given its effective --client-ca-file and what the file holds."""
    finding = _judge(process, setting, content, bundle, now, days_warning)
    return replace(finding, distribution=setting.distribution, source=setting.source)


def _judge(process, setting, content, bundle, now, days_warning) -> Finding:
    who = process.label if process is not None else 'kube-apiserver'
    ca_file = setting.value
    where = f' (in {setting.origin})' if setting.origin and setting.source != 'process' else ''
    if setting.unjudgeable:
        return Finding(AgentCheck.UNKNOWN, f'UNKNOWN: {who}: {setting.unjudgeable}.', process, ca_file)
    if ca_file is None:
        reason = f'FAIL: {who} runs without --client-ca-file{where}: client certificate authentication is off.'
        return Finding(AgentCheck.CRITICAL, reason, process)
    if ca_file == '':
        reason = f'FAIL: {who} has an empty --client-ca-file{where}: client certificate authentication is off.'
        return Finding(AgentCheck.CRITICAL, reason, process, ca_file)
    the_file = f'the client CA file {ca_file} of {who}{where}'
    if content is None or content.data is None:
        problem, detail = (content.problem, content.detail) if content else ('error', 'was not read')
        if problem in ('missing', 'not_regular'):
            reason = f'FAIL: {the_file} {detail}; the apiserver cannot load it and will not restart.'
            return Finding(AgentCheck.CRITICAL, reason, process, ca_file)
        if problem == 'permission':
            reason = (
                f'WARNING: --client-ca-file is set on {who} but the Agent cannot read {ca_file} ({detail}). '
                'Run the Agent as root (in Kubernetes: hostPID, and privileged or CAP_SYS_PTRACE with '
                'CAP_DAC_READ_SEARCH) to verify the file.'
            )
            return Finding(AgentCheck.WARNING, reason, process, ca_file)
        return Finding(AgentCheck.UNKNOWN, f'UNKNOWN: {the_file} could not be checked: {detail}.', process, ca_file)
    assert bundle is not None
    cas = bundle.ca_certificates
    days_left = round((min(c.not_after for c in cas) - now) / SECONDS_PER_DAY, 2) if cas else None
    valid = [c for c in cas if c.not_before <= now <= c.not_after]
    summary = f'{len(cas)} CA certificate(s), {len(valid)} valid now'
    if bundle.unparseable:
        status, reason = (
            AgentCheck.CRITICAL,
            f'FAIL: {the_file} holds {bundle.unparseable} certificate block(s) that do not parse; '
            'the apiserver will not restart with it.',
        )
    elif not bundle.certificates:
        status, reason = AgentCheck.CRITICAL, f'FAIL: {the_file} holds no PEM certificate.'
    elif not cas:
        status, reason = (
            AgentCheck.CRITICAL,
            f'FAIL: {the_file} holds {len(bundle.certificates)} certificate(s), none of them a CA '
            '(basicConstraints CA:TRUE).',
        )
    elif not valid:
        status, reason = (
            AgentCheck.CRITICAL,
            f'FAIL: every CA certificate in {the_file} is expired or not yet valid; no client certificate can be '
            'verified.',
        )
    elif days_left < 0:
        status, reason = AgentCheck.WARNING, f'WARNING: {the_file} holds an expired CA certificate ({summary}).'
    elif days_left <= days_warning:
        status, reason = (
            AgentCheck.WARNING,
            f'WARNING: a CA certificate in {the_file} expires in {days_left:.1f} days ({summary}).',
        )
    else:
        status, reason = AgentCheck.OK, f'PASS: {who} authenticates clients against {ca_file} ({summary}).'
    return Finding(status, reason, process, ca_file, bundle, days_left)


def against_manifest(finding: Finding, manifest: str, manifest_value: str | None) -> Finding:
    """The finding for a running apiserver, at least a WARNING when its static pod manifest now says otherwise."""
    if manifest_value == finding.ca_file:
        return finding
    status = max(finding.status, AgentCheck.WARNING, key=STATUS_SEVERITY.get)
    note = (
        f' The static pod manifest {manifest} sets --client-ca-file to {manifest_value!r} but the running apiserver '
        f'uses {finding.ca_file!r}: the kubelet has not restarted it with the manifest (the running process was '
        'judged).'
    )
    reason = finding.reason if status == finding.status else 'WARNING: ' + finding.reason.split(': ', 1)[1]
    return replace(finding, status=status, reason=reason + note)


def remediation(distribution: str) -> str:
    return CONTROL.remediation.get(distribution, CONTROL.remediation['kubernetes'])


def node_verdict(findings: Sequence[Finding]) -> Finding:
    """The worst finding over all apiserver processes of the node."""
    return max(findings, key=lambda f: STATUS_SEVERITY[f.status])


def compliance_status(finding: Finding) -> str | None:
    if finding.compliant is None:
        return None
    return 'passed' if finding.compliant else 'failed'


def event_text(finding: Finding, remediation: str) -> str:
    lines = ['%%%', finding.reason, '']
    process = finding.process
    if process is not None:
        lines.append(f'* Process: `{process.name}`, pid {process.pid}')
    value = 'not set' if finding.ca_file is None else f'`{finding.ca_file}`' if finding.ca_file else 'empty'
    lines.append(f'* Effective `--client-ca-file`: {value}')
    bundle = finding.bundle
    if bundle is not None:
        lines.append(
            f'* The file holds {len(bundle.certificates)} certificate(s), {len(bundle.ca_certificates)} of them CA'
            + (f', {bundle.unparseable} unparseable' if bundle.unparseable else '')
        )
        for cert in bundle.ca_certificates[:5]:
            expiry = datetime.fromtimestamp(cert.not_after, UTC).strftime('%Y-%m-%d')
            lines.append(f'  * CA `{cert.subject}`, valid until {expiry}')
    if finding.days_left is not None:
        lines.append(f'* Days until the earliest CA certificate expires: {finding.days_left:.1f}')
    lines += ['', f'**Why it matters:** {CONTROL.rationale}', '', f'**Remediation:** {remediation}', '%%%']
    return '\n'.join(lines)


# --------------------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    tags: tuple[str, ...] = ()
    days_warning: int = 30
    event_resend_interval: int = 86400
    rescan_every: int = 10
    max_ca_file_size: int = 4 * 1024 * 1024
    host_root: str = ''  # where the host's files are seen; '' for <procfs>/1/root, the root of the host's init
    benchmark_version: str = ''

    @classmethod
    def from_instance(cls, instance: Mapping) -> Settings:
        if not isinstance(instance, Mapping):
            raise ConfigurationError('the instance must be a mapping of options')
        tags = instance.get('tags') or []
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise ConfigurationError('`tags` must be a list of strings')
        return cls(
            tags=tuple(tags),
            days_warning=_integer(instance, 'days_warning', cls.days_warning, minimum=0),
            event_resend_interval=_integer(instance, 'event_resend_interval', cls.event_resend_interval, minimum=0),
            rescan_every=_integer(instance, 'rescan_every', cls.rescan_every, minimum=1),
            max_ca_file_size=_integer(instance, 'max_ca_file_size', cls.max_ca_file_size, minimum=1),
            host_root=_string_option(instance, 'host_root'),
            benchmark_version=_benchmark_version(instance),
        )


# Options of every check instance, handled by the Agent or the base class.
GENERIC_OPTIONS = frozenset(
    {
        'tags',
        'service',
        'min_collection_interval',
        'empty_default_hostname',
        'metric_patterns',
        'disable_generic_tags',
        'enable_legacy_tags_normalization',
        'name',
    }
)
KNOWN_OPTIONS = GENERIC_OPTIONS | set(Settings.__dataclass_fields__)


def _string_option(instance: Mapping, name: str) -> str:
    value = instance.get(name) or ''
    if not isinstance(value, str):
        raise ConfigurationError(f'`{name}` must be a string, got {value!r}')
    return value.rstrip('/')


def _benchmark_version(instance: Mapping) -> str:
    version = instance.get('benchmark_version')
    if version is None or version == '':
        return ''
    version = str(version)
    if version not in CONTROL.numbering:
        known = ', '.join(CONTROL.numbering)
        raise ConfigurationError(
            f'`benchmark_version` must be one of the CIS Kubernetes versions {known}, got {version}'
        )
    return version


def _integer(instance: Mapping, name: str, default: int, minimum: int) -> int:
    value = instance.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f'`{name}` must be an integer of at least {minimum}, got {value!r}')
    return value


# --------------------------------------------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------------------------------------------


class CisKubernetesCheck(AgentCheck):
    __NAMESPACE__ = 'cis_kubernetes'

    SERVICE_CHECK = 'apiserver.client_ca_file'
    METRIC_COMPLIANT = 'control.compliant'
    METRIC_PROCESSES = 'apiserver.processes'
    METRIC_DAYS_LEFT = 'apiserver.client_ca.days_left'
    METRIC_CERTIFICATES = 'apiserver.client_ca.certificates'
    STATE_KEY = 'announced_status'
    MESSAGE_LIMIT = 500  # what the Datadog API keeps of a service check message

    def __init__(self, name, init_config, instances):
        super().__init__(name, init_config, instances)
        self.settings = Settings.from_instance(self.instance or {})
        self.tags = [*self.settings.tags, CONTROL_TAG]
        if self.settings.benchmark_version:
            version = self.settings.benchmark_version
            self.tags += [f'cis_benchmark_version:{version}', f'cis_control:{CONTROL.numbering[version]}']
        self._scan_result = ProcessScan(apiservers=(), witnesses=frozenset())
        self._apiservers: list[ApiserverProcess] = []
        # Resolved once per process: what its distribution's configuration said when the process was first seen.
        self._client_ca: dict[tuple[int, float], ClientCaSetting] = {}
        self._manifests: dict[int, tuple[str, str | None]] = {}  # pid -> its static pod manifest and its value
        self._node_manifest: tuple[str | None, str | None, str | None] = (None, None, None)  # when no apiserver
        self._scanned = False
        self._had_apiserver = False
        self._runs_since_scan = 0
        # The content last read from each CA file and what it holds: an unchanged file is compared, not parsed again.
        self._bundles: dict[str, tuple[bytes, CaBundle]] = {}
        self._secrets: set[str] = set()

    def load_configuration_models(self, package_path=None):
        """Options are validated by Settings in __init__; the check ships no pydantic models.

        The base class would import pydantic (about 5 MB of the Agent's memory on every control-plane node) only to
        find no models; instead, unknown options are reported here as the base class's typo detection would.
        """
        unknown = sorted(set(self.instance or {}) - KNOWN_OPTIONS)
        if unknown:
            from difflib import get_close_matches  # only for a typo: difflib costs the Agent 1.4 MB
        for option in unknown:
            close = get_close_matches(option, KNOWN_OPTIONS, n=1)
            hint = f' (did you mean `{close[0]}`?)' if close else ''
            self.log.warning('Unknown option `%s` in the cis_kubernetes instance%s', option, hint)

    def check(self, _):
        try:
            self._evaluate()
        except Exception as e:  # never let an error escape into the Agent: report it instead
            import traceback  # only on this path: it costs the Agent memory on every node

            # The traceback is scrubbed here: a handler would format exc_info after the logger's own scrubbing.
            self.log.error('CIS %s could not be evaluated: %s', CONTROL.id, self.sanitize(traceback.format_exc()))
            self.service_check(
                self.SERVICE_CHECK,
                AgentCheck.UNKNOWN,
                tags=self.tags,
                message=self._message(
                    f'UNKNOWN: the check could not evaluate CIS {CONTROL.id}: {type(e).__name__}: {e}'
                ),
            )

    # -- steps ---------------------------------------------------------------------------------------------------

    def _evaluate(self) -> None:
        procfs = self._procfs()
        apiservers = self._current_apiservers(procfs)
        self.gauge(self.METRIC_PROCESSES, len(apiservers), tags=self.tags)
        now = time.time()
        if apiservers:
            findings = [self._finding(procfs, process, now) for process in apiservers]
        else:
            finding = self._finding_without_apiserver(procfs, now)
            if finding is None:
                self.log.debug('No kube-apiserver on this node: CIS %s does not apply here', CONTROL.id)
                return
            findings = [finding]
        self._report(findings, now)

    def _procfs(self) -> str:
        procfs = (datadog_agent.get_config('procfs_path') or psutil.PROCFS_PATH or '/proc').rstrip('/') or '/proc'
        if procfs != psutil.PROCFS_PATH:
            psutil.PROCFS_PATH = procfs  # as the Agent's own process check does, so psutil reads the host's /proc
        return procfs

    def _current_apiservers(self, procfs: str) -> list[ApiserverProcess]:
        """Known apiservers while they all still run. A full scan every `rescan_every` runs, at once when one is gone,
        and at every run while the apiserver this node had is missing (it is restarting)."""
        self._runs_since_scan += 1
        if (
            not self._scanned
            or self._runs_since_scan >= self.settings.rescan_every
            or (self._had_apiserver and not self._apiservers)
            or not all(is_same_process_running(p) for p in self._apiservers)
        ):
            self._scan(procfs)
        return self._apiservers

    def _scan(self, procfs: str) -> None:
        self._scan_result = scan_processes(procfs)
        self._apiservers = list(self._scan_result.apiservers)
        self._had_apiserver = self._had_apiserver or bool(self._apiservers)
        self._scanned = True
        self._runs_since_scan = 0
        known = {}
        self._manifests = {}
        self._node_manifest = (None, None, None) if self._apiservers else self._find_node_manifest(procfs)
        for process in self._apiservers:
            for secret in secret_flag_values(process.flags):
                if secret not in self._secrets:
                    self._secrets.add(secret)
                    self.register_secret(secret)
            key = (process.pid, process.create_time)
            setting = known[key] = self._client_ca.get(key) or client_ca_setting(procfs, process)
            manifest = self._manifest_of(procfs, process, setting)
            if manifest is not None:
                self._manifests[process.pid] = manifest
        self._client_ca = known

    def _find_node_manifest(self, procfs: str) -> tuple[str | None, str | None, str | None]:
        """(path, distribution, its --client-ca-file) of a static pod manifest for kube-apiserver on the host."""
        host_root = self.settings.host_root or f'{procfs}/1/root'
        for path, distribution in ((KUBEADM_MANIFEST, 'kubeadm'), (RKE2_MANIFEST, 'rke2')):
            exists, value = manifest_client_ca(host_root, path)
            if exists:
                return path, distribution, value
        return None, None, None

    def _manifest_of(self, procfs: str, process: ApiserverProcess, setting: ClientCaSetting):
        """The static pod manifest the kubelet started this apiserver from, read in `host_root` or else in the root of
        the apiserver's parent (its container runtime's shim), which is the node's even for a kind node container."""
        path = STATIC_POD_MANIFESTS.get(setting.distribution) if process.kind == 'kube-apiserver' else None
        if path is None:
            return None
        node_root = self.settings.host_root or f'{procfs}/{process.ppid}/root'
        exists, value = manifest_client_ca(node_root, path)
        return (path, value) if exists else None

    def _finding(self, procfs: str, process: ApiserverProcess, now: float) -> Finding:
        setting = self._client_ca[(process.pid, process.create_time)]
        base = f'{procfs}/{process.pid}'
        finding = self._judge(process, setting, f'{base}/root', f'{base}/cwd', now)
        manifest = self._manifests.get(process.pid)
        return finding if manifest is None else against_manifest(finding, *manifest)

    def _judge(self, process, setting: ClientCaSetting, root: str, cwd: str, now: float) -> Finding:
        content = bundle = None
        if setting.value and not setting.unjudgeable:
            content = read_file_in_root(root, cwd, setting.value, self.settings.max_ca_file_size)
            if content.data is not None:
                bundle = self._bundle(f'{root}:{setting.value}', content.data)
        return judge(process, setting, content, bundle, now, self.settings.days_warning)

    def _finding_without_apiserver(self, procfs: str, now: float) -> Finding | None:
        """No apiserver process: expected but not running, not visible to the Agent, or not applicable (None)."""
        host_root = self.settings.host_root or f'{procfs}/1/root'
        witnesses = self._scan_result.witnesses
        path, distribution, value = self._node_manifest
        if 'rke2' in witnesses or (path and 'kubelet' in witnesses):
            what = 'an RKE2 server runs' if 'rke2' in witnesses else f'its static pod manifest {path} is present'
            reason = (
                f'UNKNOWN: kube-apiserver is expected on this node ({what}) but is not running; CIS {CONTROL.id} '
                'cannot be judged until it starts.'
            )
            return Finding(AgentCheck.UNKNOWN, reason, distribution='rke2' if 'rke2' in witnesses else distribution)
        if path is None:
            if not self._scan_result.listed:
                return Finding(
                    AgentCheck.UNKNOWN, f"UNKNOWN: {procfs} lists no process: check the Agent's procfs_path."
                )
            if not self._scan_result.sees_others:
                reason = (
                    f"UNKNOWN: {procfs} hides other users' processes from the Agent (mounted with hidepid), so "
                    'kube-apiserver cannot be found. Run the Agent as root, or add it to the group named by gid=.'
                )
                return Finding(AgentCheck.UNKNOWN, reason)
            return None
        # A manifest but no kubelet either: the Agent does not see the host's processes, so judge the manifest.
        setting = ClientCaSetting(value, 'manifest', distribution, path)
        finding = self._judge(None, setting, host_root, host_root, now)
        note = (
            f' Judged from the static pod manifest {path}: no apiserver or kubelet process is visible to the Agent '
            "(run it in the host's PID namespace to judge the running apiserver)."
        )
        return replace(finding, reason=finding.reason + note)

    def _bundle(self, key: str, data: bytes) -> CaBundle:
        cached = self._bundles.get(key)
        if cached is not None and cached[0] == data:
            return cached[1]
        if len(self._bundles) >= 8:  # one entry per apiserver and file: drop those of processes long gone
            self._bundles.clear()
        bundle = ca_bundle_from_pem(data)
        self._bundles[key] = (data, bundle)
        return bundle

    # -- reporting -------------------------------------------------------------------------------------------------

    def _report(self, findings: Sequence[Finding], now: float) -> None:
        verdict = node_verdict(findings)
        tags = self._verdict_tags(verdict)
        message = None
        if verdict.status != AgentCheck.OK:
            others = len(findings) - 1
            message = verdict.reason + (f' ({others} more apiserver process(es) judged)' if others else '')
            if verdict.status != AgentCheck.UNKNOWN:
                message += ' Fix: ' + remediation(verdict.distribution)
        self.service_check(self.SERVICE_CHECK, verdict.status, tags=tags, message=self._message(message))
        if verdict.compliant is not None:
            self.gauge(self.METRIC_COMPLIANT, 1 if verdict.compliant else 0, tags=tags)
        seen_files = set()
        for finding in findings:
            if finding.bundle is None or finding.ca_file in seen_files:
                continue
            seen_files.add(finding.ca_file)
            file_tags = [*self._verdict_tags(finding), f'client_ca_file:{finding.ca_file}']
            self.gauge(self.METRIC_CERTIFICATES, len(finding.bundle.certificates), tags=file_tags)
            if finding.days_left is not None:
                self.gauge(self.METRIC_DAYS_LEFT, finding.days_left, tags=file_tags)
        self._announce(verdict, now)

    def _verdict_tags(self, finding: Finding) -> list[str]:
        return [*self.tags, f'kube_distribution:{finding.distribution}', f'verdict_source:{finding.source}']

    def _message(self, text: str | None) -> str | None:
        if text is None:
            return None
        text = self.sanitize(text)
        return text if len(text) <= self.MESSAGE_LIMIT else text[: self.MESSAGE_LIMIT - 1] + '…'

    def _announce(self, verdict: Finding, now: float) -> None:
        """An event when the node's compliance status changes (or an unchanged failure is due again)."""
        status = compliance_status(verdict)
        if status is None:
            return
        previous = self._announced()
        unchanged = previous.get('status') == status
        if unchanged:
            resend = self.settings.event_resend_interval
            due = status == 'failed' and resend > 0 and now - previous.get('at', 0) >= resend
            if not due:
                return
        host = datadog_agent.get_hostname()
        failed = status == 'failed'
        title = (
            f'CIS Kubernetes {CONTROL.id} failed on {host}: kube-apiserver client certificate authentication'
            if failed
            else f'CIS Kubernetes {CONTROL.id} passed on {host}: kube-apiserver authenticates clients by certificate'
        )
        self.event(
            {
                'timestamp': int(now),
                'event_type': f'{CONTROL.framework}.{CONTROL.id}',
                'msg_title': title,
                'msg_text': self.sanitize(event_text(verdict, remediation(verdict.distribution))),
                'alert_type': 'error' if failed else 'success',
                'priority': 'normal',
                'host': host,
                'aggregation_key': f'{CONTROL.rule_id}:{host}',
                'source_type_name': self.__NAMESPACE__,
                'tags': [
                    *self._verdict_tags(verdict),
                    f'compliance_framework:{CONTROL.framework}',
                    f'compliance_rule:{CONTROL.rule_id}',
                    f'compliance_status:{status}',
                ],
            }
        )
        self.write_persistent_cache(self.STATE_KEY, json.dumps({'status': status, 'at': now}))

    def _announced(self) -> dict:
        try:
            state = json.loads(self.read_persistent_cache(self.STATE_KEY) or '{}')
        except ValueError:
            return {}
        return state if isinstance(state, dict) else {}
