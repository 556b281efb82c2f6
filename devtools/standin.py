"""Stand-in kube-apiserver processes: real processes with the name and argv of a real apiserver.

A stand-in is a copy of a harmless binary (`sleep`) saved under the program name we want, so that both its name
(the kernel names a process after the file it executes) and its executable are those of an apiserver, and executed
with the exact argv we want. It is stopped before its first instruction: the child asks to
be traced, the kernel stops it right after `execve`, and we detach leaving it in SIGSTOP. So it never parses the
apiserver's flags, needs no compiler, and stays until we kill it (or our process dies: PR_SET_PDEATHSIG).

With `root`, the child first enters a new mount namespace and chroots into `root`, into which the host's system
directories are bind-mounted read-only so that the binary loads: the stand-in then sees its own files, not ours.
That needs root (CAP_SYS_ADMIN); `can_use_separate_root()` says whether this machine allows it.

With `user` (and `group`, `groups`, `capabilities`), the child takes those credentials just before `execve`, as a
hardened apiserver runs (Talos: uid 65534): supplementary groups, then gid, then uid, then the given capabilities
raised as ambient so that they survive `execve` for a non-root program (capabilities(7)). Also needs root.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_libc.ptrace.restype = ctypes.c_long

PTRACE_TRACEME = 0
PTRACE_DETACH = 17
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE = 47, 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
CLONE_NEWNS = 0x00020000
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

_CHILD_FAILURES = {
    91: 'ptrace(PTRACE_TRACEME) refused',
    92: 'unshare(CLONE_NEWNS) refused',
    93: 'mount refused',
    94: 'chroot refused',
    95: 'chdir failed',
    96: 'execve failed',
    97: 'setting the credentials failed',
}  # exit codes of the helper when it fails before exec
SYSTEM_DIRECTORIES = ('usr', 'bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32')


@dataclass
class StandIn:
    pid: int
    argv: tuple[str, ...]

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            while True:
                pid, status = os.waitpid(self.pid, 0)
                if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                    break


def _sleep_binary() -> str:
    path = shutil.which('sleep') or '/bin/sleep'
    return os.path.realpath(path)


def _mount(source: str | None, target: str, flags: int) -> None:
    if _libc.mount(source.encode() if source else None, target.encode(), None, flags, None) != 0:
        os._exit(93)


def _enter_root(root: str) -> None:
    """A private mount namespace, the host's system directories bound read-only into `root`, then chroot."""
    if _libc.unshare(CLONE_NEWNS) != 0:
        os._exit(92)
    _mount(None, '/', MS_REC | MS_PRIVATE)
    for name in SYSTEM_DIRECTORIES:
        host = '/' + name
        inside = os.path.join(root, name)
        if os.path.islink(host):
            if not os.path.lexists(inside):
                os.symlink(os.readlink(host), inside)
        elif os.path.isdir(host):
            os.makedirs(inside, exist_ok=True)
            _mount(host, inside, MS_BIND | MS_REC)
            _mount(None, inside, MS_BIND | MS_REMOUNT | MS_RDONLY)
    try:
        os.chroot(root)
    except OSError:
        os._exit(94)


class _CapHeader(ctypes.Structure):
    _fields_ = [('version', ctypes.c_uint32), ('pid', ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [('effective', ctypes.c_uint32), ('permitted', ctypes.c_uint32), ('inheritable', ctypes.c_uint32)]


def set_credentials(user: int, group: int, groups: Sequence[int] = (), capabilities: Sequence[int] = ()) -> None:
    """Become `user`:`group` with supplementary `groups`, keeping exactly `capabilities` (effective, permitted,
    inheritable and ambient, so that they survive execve). The calling process must be root."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), 'prctl(PR_SET_KEEPCAPS)')
    os.setgroups(list(groups))
    os.setresgid(group, group, group)
    os.setresuid(user, user, user)
    mask = 0
    for cap in capabilities:
        mask |= 1 << cap
    data = (_CapData * 2)()
    for i in range(2):
        word = (mask >> (32 * i)) & 0xFFFFFFFF
        data[i].effective = data[i].permitted = data[i].inheritable = word
    if libc.capset(ctypes.byref(_CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)), data) != 0:
        raise OSError(ctypes.get_errno(), 'capset')
    for cap in capabilities:
        if libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), 'prctl(PR_CAP_AMBIENT_RAISE)')


def _exec_traced(spec: dict) -> None:
    """In the freshly spawned helper: be traced by our parent, enter the root, take the credentials, exec."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if _libc.ptrace(PTRACE_TRACEME, 0, None, None) != 0:
        os._exit(91)
    if spec['root'] is not None:
        _enter_root(spec['root'])
    try:
        os.chdir(spec['cwd'])
    except OSError:
        os._exit(95)
    if spec.get('user') is not None:
        try:
            set_credentials(spec['user'], spec['group'], spec['groups'], spec['capabilities'])
        except OSError:
            os._exit(97)
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # cleared by the change of credentials
    try:
        if spec['env'] is None:
            os.execv(spec['executable'], spec['argv'])
        os.execve(spec['executable'], spec['argv'], spec['env'])
    except OSError:
        os._exit(96)


def start(
    argv: Sequence[str],
    program: str = 'kube-apiserver',
    root: str | None = None,
    cwd: str = '/',
    env: dict[str, str] | None = None,
    exe: str | None = None,
    user: int | None = None,
    group: int | None = None,
    groups: Sequence[int] = (),
    capabilities: Sequence[int] = (),
) -> StandIn:
    """Start a stopped process named `program` (its comm) whose argv is exactly `argv`.

    `root`: a directory that becomes the process's root (needs root privileges). `cwd`: its working directory,
    as seen from its root. `env`: its environment (by default, ours). `exe`: the name of the file the process
    executes when it differs from `program`: the process is then exec'd through a symbolic link named `program`
    to that file, as k3s execs `<data-dir>/data/<hash>/bin/k3s-server` (a link to `k3s`): comm is the link's name,
    /proc/<pid>/exe the file's. `user`, `group` (default: `user`), `groups`, `capabilities` (bit numbers): the
    credentials it runs with (needs root; by default, ours). The process is spawned through a fresh interpreter
    running this file, so nothing runs after fork() in this (possibly multi-threaded) process.
    """
    if '/' in program or (exe and '/' in exe):
        raise ValueError('program and exe are file names, not paths')
    sleep = _sleep_binary()
    target = exe or program
    if root is None:
        bin_dir = tempfile.mkdtemp(prefix='standin-')
        executable = os.path.join(bin_dir, program)
        shutil.copy(sleep, os.path.join(bin_dir, target))
        if target != program:
            os.symlink(target, executable)
        os.chmod(bin_dir, 0o755)  # a stand-in running as another user executes it
    else:
        bin_dir = os.path.join(root, '.standin', target) if exe else os.path.join(root, '.standin')
        os.makedirs(bin_dir, exist_ok=True)
        executable = os.path.join('/.standin', target, program) if exe else os.path.join('/.standin', program)
        copy = os.path.join(bin_dir, target)
        if not os.path.exists(copy):
            shutil.copy(sleep, copy)
        if target != program and not os.path.lexists(os.path.join(bin_dir, program)):
            os.symlink(target, os.path.join(bin_dir, program))
    spec = {
        'executable': executable,
        'argv': list(argv),
        'root': root,
        'cwd': cwd,
        'env': env,
        'user': user,
        'group': user if group is None else group,
        'groups': list(groups),
        'capabilities': list(capabilities),
    }
    try:
        # A process group of its own: when the caller's group is orphaned (its shell exits while it runs in the
        # background), the kernel sends SIGHUP and SIGCONT to the stopped members of that group, which would kill the
        # stand-in or run `sleep` with an apiserver's flags.
        pid = os.posix_spawn(
            sys.executable, [sys.executable, '-S', __file__, json.dumps(spec)], os.environ, setpgroup=0
        )
        _, status = os.waitpid(pid, 0)
        if not os.WIFSTOPPED(status):
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
            raise OSError(f'stand-in did not start: {_CHILD_FAILURES.get(code, f"exit status {status}")}')
        if _libc.ptrace(PTRACE_DETACH, pid, None, ctypes.c_void_p(signal.SIGSTOP)) != 0:
            os.kill(pid, signal.SIGKILL)
            raise OSError(f'ptrace(PTRACE_DETACH) failed: errno {ctypes.get_errno()}')
    finally:
        if root is None:
            shutil.rmtree(bin_dir, ignore_errors=True)
    return StandIn(pid=pid, argv=tuple(argv))


@contextlib.contextmanager
def running(argv: Sequence[str], **kwargs) -> Iterator[StandIn]:
    process = start(argv, **kwargs)
    try:
        yield process
    finally:
        process.stop()


def can_use_separate_root() -> tuple[bool, str]:
    """Whether stand-ins may get a root of their own here, and if not, why."""
    if os.geteuid() != 0:
        return False, 'a separate root for the stand-in apiserver needs root (mount namespace and chroot)'
    root = tempfile.mkdtemp(prefix='standin-probe-')
    try:
        with running(['kube-apiserver'], root=root):
            return True, ''
    except OSError as e:
        return False, f'this machine refuses a mount namespace or chroot: {e}'
    finally:
        shutil.rmtree(root, ignore_errors=True)


def can_start() -> tuple[bool, str]:
    """Whether stand-ins can start here at all (ptrace may be forbidden), and if not, why."""
    try:
        with running(['kube-apiserver']):
            return True, ''
    except OSError as e:
        return False, f'stand-in processes cannot start here: {e}'


if __name__ == '__main__':
    _exec_traced(json.loads(sys.argv[1]))
