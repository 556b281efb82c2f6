"""Reading a file as a process sees it: inside its root and from its working directory, symbolic links resolved in
that root and never out of it, only regular files, at most a given size."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass

from .access import MAY_EXEC, MAY_READ, POSIX_ACL_ACCESS_XATTR, PathStep, posix_acl_from_xattr
from .procfs import read_at_most

MAX_SYMLINKS = 40  # as the kernel's path walk


@dataclass(frozen=True)
class CaFileContent:
    """What opening the CA file inside the apiserver's root gave: its bytes, or why there are none."""

    data: bytes | None
    problem: str | None = None  # missing | not_regular | permission | too_large | error
    detail: str = ''
    # Every inode the kernel checks when the apiserver opens the file: the directories it searches, then the file.
    steps: tuple[PathStep, ...] = ()


_ERRNO_PROBLEMS = {
    errno.ENOENT: ('missing', 'does not exist'),
    errno.ENOTDIR: ('missing', 'a component of the path is not a directory'),
    errno.ELOOP: ('missing', 'too many levels of symbolic links'),
    errno.EACCES: ('permission', 'permission denied to the Agent'),
    errno.EPERM: ('permission', 'permission denied to the Agent'),
}


def _walk_in_root(
    root_fd: int, start_fd: int, path: str, steps: list[PathStep] | None = None
) -> tuple[int, str, os.stat_result]:
    """Resolve `path` as a process whose root is `root_fd` and working directory `start_fd` would.

    Returns (parent directory fd, final name, lstat of the final entry); the caller closes the fd. Every step is
    opened with O_NOFOLLOW relative to the previous one, symbolic links are read and resolved here, and `..` stops
    at the root: nothing outside the apiserver's root is ever reached. `steps`, when given, receives each directory
    in which a name is looked up (the kernel's path walk needs search permission on each, fs/namei.c may_lookup).
    """
    root_st = os.fstat(root_fd)
    root_id = (root_st.st_dev, root_st.st_ino)
    current = os.dup(root_fd if path.startswith('/') else start_fd)
    shown = [''] if path.startswith('/') else ['.']  # the directory `current` as the process names it
    parts = _components(path)
    parts.reverse()
    links = 0
    try:
        while True:
            if not parts:  # the path names a directory (or the root itself)
                return current, '.', os.fstat(current)
            part = parts.pop()
            if part == '.':  # only kept after a trailing slash: what precedes it must be a directory
                continue
            if steps is not None:
                steps.append(_path_step(current, '/'.join(shown) or '/', MAY_EXEC))
            if part == '..':
                st = os.fstat(current)
                if (st.st_dev, st.st_ino) != root_id:
                    parent = os.open('..', os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=current)
                    os.close(current)
                    current = parent
                    shown = shown[:-1] if len(shown) > 1 and shown[-1] != '..' else [*shown, '..']
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
                    shown = ['']
                parts.extend(reversed(_components(target)))
                continue
            if not parts:
                if steps is not None:
                    steps.append(PathStep('/'.join([*shown, part]), st.st_mode, st.st_uid, st.st_gid, want=MAY_READ))
                return current, part, st
            if not stat.S_ISDIR(st.st_mode):
                raise OSError(errno.ENOTDIR, 'not a directory')
            nxt = os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=current)
            os.close(current)
            current = nxt
            shown.append(part)
    except BaseException:
        os.close(current)
        raise


def _components(path: str) -> list[str]:
    """The names a path walks through; a trailing slash (or `/.`) keeps a final `.`, since the kernel then requires
    the last name to be a directory (`ca.crt/` is ENOTDIR for a file)."""
    parts = [part for part in path.split('/') if part not in ('', '.')]
    if parts and (path.endswith('/') or path.endswith('/.')):
        parts.append('.')
    return parts


def read_file_in_root(root: str, cwd: str, path: str, max_size: int, with_steps: bool = True) -> CaFileContent:
    """Read `path` as the process whose root and working directory are the links `root` and `cwd` would.

    Only a regular file is opened (a FIFO or device never blocks the check), and at most `max_size` bytes are read.
    With `with_steps`, the mode, owner and ACL of every inode on the way, for judging who may read the file.
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
    steps: list[PathStep] | None = [] if with_steps else None
    try:
        if not path.startswith('/'):
            cwd_fd = os.open(cwd, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        parent_fd, name, st = _walk_in_root(root_fd, cwd_fd, path, steps)
        if not stat.S_ISREG(st.st_mode):
            return CaFileContent(None, 'not_regular', f'is not a regular file ({_file_kind(st.st_mode)})')
        if st.st_size > max_size:
            return CaFileContent(None, 'too_large', f'is {st.st_size} bytes, over max_ca_file_size ({max_size})')
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, dir_fd=parent_fd)
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(opened.st_mode):
                return CaFileContent(None, 'error', 'was replaced while being opened')
            if steps is not None:
                steps[-1] = _path_step(fd, steps[-1].path, MAY_READ)  # the mode, owner and ACL of the file opened
            data = read_at_most(fd, max_size + 1)
        finally:
            os.close(fd)
        if len(data) > max_size:
            return CaFileContent(None, 'too_large', f'is over max_ca_file_size ({max_size} bytes)')
        return CaFileContent(data, steps=tuple(steps or ()))
    except OSError as e:
        problem, detail = _ERRNO_PROBLEMS.get(e.errno, ('error', os.strerror(e.errno or 0)))
        return CaFileContent(None, problem, detail)
    finally:
        for fd in (parent_fd, cwd_fd, root_fd):
            if fd >= 0:
                os.close(fd)


def _path_step(fd: int, shown: str, want: int) -> PathStep:
    """The mode, owner and access ACL of the inode open at `fd` (an O_PATH descriptor for directories)."""
    st = os.fstat(fd)
    acl = None
    unreadable = ''
    try:
        raw = _access_acl(fd)
        acl = None if raw is None else posix_acl_from_xattr(raw)
    except (OSError, ValueError) as e:
        unreadable = str(e)
    return PathStep(shown, st.st_mode, st.st_uid, st.st_gid, acl, want, unreadable)


def _access_acl(fd: int) -> bytes | None:
    """The system.posix_acl_access value of the inode at `fd`, None when it has no ACL or its filesystem none.

    fgetxattr refuses O_PATH descriptors (EBADF) on the kernels in use; the descriptor's /proc/self/fd link reaches
    the same inode.
    """
    try:
        try:
            return os.getxattr(fd, POSIX_ACL_ACCESS_XATTR)
        except OSError as e:
            if e.errno != errno.EBADF:
                raise
            return os.getxattr(f'/proc/self/fd/{fd}', POSIX_ACL_ACCESS_XATTR)
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return None
        raise


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


CONFIG_FILE_SIZE = 1 << 20


def read_text_in_root(root: str, cwd: str, path: str) -> tuple[str | None, str]:
    """(text, '') or (None, why) for a configuration file read as the process whose root and cwd are given.

    PermissionError when the Agent may not read it: a setting it holds can then not be known.
    """
    content = read_file_in_root(root, cwd, path, CONFIG_FILE_SIZE, with_steps=False)  # the Agent reads it, not judges
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
