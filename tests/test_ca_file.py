"""Opening the CA file as the apiserver sees it: its root, its working directory, only regular files."""

import os
import socket
import stat
import struct
import time

import pytest

from datadog_checks.cis_kubernetes.access import (
    ACL_GROUP_OBJ,
    ACL_MASK,
    ACL_OTHER,
    ACL_USER,
    ACL_USER_OBJ,
    MAY_EXEC,
    MAY_READ,
    POSIX_ACL_ACCESS_XATTR,
    AclEntry,
)
from datadog_checks.cis_kubernetes.files_in_root import read_file_in_root
from tests.conftest import as_unprivileged_user, needs_root, write

LIMIT = 1 << 20
UNDEFINED = 0xFFFFFFFF


def read(root: str, path: str, cwd: str | None = None, limit: int = LIMIT):
    return read_file_in_root(root, cwd or root, path, limit)


def test_regular_file_is_read(workdir):
    write(f'{workdir}/etc/pki/ca.crt', b'data')
    assert read(workdir, '/etc/pki/ca.crt').data == b'data'


def test_missing_file(workdir):
    content = read(workdir, '/etc/pki/ca.crt')
    assert (content.data, content.problem) == (None, 'missing')


def test_component_that_is_a_file_is_missing(workdir):
    write(f'{workdir}/etc', b'')
    assert read(workdir, '/etc/pki/ca.crt').problem == 'missing'


def test_directory_is_not_a_regular_file(workdir):
    os.makedirs(f'{workdir}/etc/pki/ca.crt')
    content = read(workdir, '/etc/pki/ca.crt')
    assert content.problem == 'not_regular'
    assert 'directory' in content.detail


def test_root_itself_is_not_a_regular_file(workdir):
    assert read(workdir, '/').problem == 'not_regular'


def test_fifo_is_not_opened_and_does_not_hang(workdir):
    os.makedirs(f'{workdir}/pki')
    os.mkfifo(f'{workdir}/pki/ca.crt')
    started = time.monotonic()
    content = read(workdir, '/pki/ca.crt')
    assert content.problem == 'not_regular'
    assert 'FIFO' in content.detail
    assert time.monotonic() - started < 1


def test_socket_is_not_a_regular_file(workdir):
    os.makedirs(f'{workdir}/pki')
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(f'{workdir}/pki/ca.crt')
        assert read(workdir, '/pki/ca.crt').problem == 'not_regular'


def test_character_device_is_not_read(workdir):
    os.makedirs(f'{workdir}/pki')
    os.symlink('/dev/zero', f'{workdir}/pki/zero')
    # the link resolves inside the root, where /dev/zero does not exist
    assert read(workdir, '/pki/zero').problem == 'missing'
    assert read('/', '/dev/zero').problem == 'not_regular'


def test_relative_symlink_resolves_inside_the_root(workdir):
    write(f'{workdir}/etc/pki/real.crt', b'real')
    os.symlink('real.crt', f'{workdir}/etc/pki/ca.crt')
    assert read(workdir, '/etc/pki/ca.crt').data == b'real'


def test_absolute_symlink_resolves_inside_the_root_not_the_agents(workdir):
    write(f'{workdir}/inside/ca.crt', b'inside')
    outside = write(f'{workdir}-outside/ca.crt', b'outside')
    try:
        os.makedirs(f'{workdir}/pki')
        os.symlink(outside, f'{workdir}/pki/ca.crt')
        assert read(workdir, '/pki/ca.crt').problem == 'missing'
        os.makedirs(f'{workdir}{os.path.dirname(outside)}')
        write(f'{workdir}{outside}', b'as the apiserver sees it')
        assert read(workdir, '/pki/ca.crt').data == b'as the apiserver sees it'
    finally:
        os.remove(outside)
        os.rmdir(os.path.dirname(outside))


def test_dot_dot_stops_at_the_root(workdir):
    write(f'{workdir}/ca.crt', b'top of root')
    os.makedirs(f'{workdir}/pki')
    os.symlink('../../../../../ca.crt', f'{workdir}/pki/ca.crt')
    assert read(workdir, '/pki/ca.crt').data == b'top of root'
    assert read(workdir, '/../../../ca.crt').data == b'top of root'


def test_symlink_loop_is_missing(workdir):
    os.makedirs(f'{workdir}/pki')
    os.symlink('b', f'{workdir}/pki/a')
    os.symlink('a', f'{workdir}/pki/b')
    content = read(workdir, '/pki/a')
    assert content.problem == 'missing'
    assert 'symbolic links' in content.detail


def test_relative_path_is_relative_to_the_working_directory(workdir):
    write(f'{workdir}/srv/pki/ca.crt', b'from cwd')
    assert read(workdir, 'pki/ca.crt', cwd=f'{workdir}/srv').data == b'from cwd'
    assert read(workdir, '../srv/pki/ca.crt', cwd=f'{workdir}/srv').data == b'from cwd'


def test_file_over_the_size_bound_is_not_read(workdir):
    path = f'{workdir}/big.crt'
    with open(path, 'wb') as f:
        f.truncate(1 << 40)  # sparse: a terabyte that takes no space
    content = read(workdir, '/big.crt', limit=1024)
    assert (content.data, content.problem) == (None, 'too_large')


def test_non_utf8_path(workdir):
    name = os.fsdecode(b'ca-\xff.crt')
    write(os.path.join(workdir, name), b'x')
    assert read(workdir, '/' + name).data == b'x'


def test_missing_root_is_an_error_not_a_missing_file(workdir):
    content = read(f'{workdir}/gone', '/pki/ca.crt')
    assert content.problem == 'error'


@needs_root
def test_unreadable_file_is_a_permission_problem(workdir):
    write(f'{workdir}/pki/ca.crt', b'x', mode=0o600)
    assert as_unprivileged_user(lambda: read(workdir, '/pki/ca.crt').problem) == 'permission'


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads any file; the root variant runs as another user')
def test_unreadable_file_is_a_permission_problem_for_a_user(workdir):
    write(f'{workdir}/pki/ca.crt', b'x', mode=0o000)
    assert read(workdir, '/pki/ca.crt').problem == 'permission'


@pytest.mark.parametrize('suffix', ['/', '/.', '//', '/./'])
@pytest.mark.parametrize('target', ['file', 'dir', 'link-to-file', 'link-to-dir'])
def test_trailing_slash_is_resolved_as_the_kernel_resolves_it(workdir, target, suffix):
    """The kernel is the oracle: opening the same path on this machine (root /) gives the same answer."""
    write(f'{workdir}/pki/file', b'data')
    os.makedirs(f'{workdir}/pki/dir')
    os.symlink('file', f'{workdir}/pki/link-to-file')
    os.symlink('dir/', f'{workdir}/pki/link-to-dir')
    path = f'{workdir}/pki/{target}{suffix}'
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except NotADirectoryError:
        kernel = 'missing'
    else:
        kernel = None if os.path.isfile(f'/proc/self/fd/{fd}') else 'not_regular'
        os.close(fd)
    content = read('/', path)
    assert content.problem == kernel, content
    if kernel == 'missing':
        assert 'not a directory' in content.detail


# -- every inode the kernel checks on the way (for the apiserver's own permission) -------------------------------


def test_walk_records_each_directory_searched_then_the_file_read(workdir):
    write(f'{workdir}/etc/pki/real/ca.crt', b'x', mode=0o640)
    os.symlink('/etc/pki/real', f'{workdir}/etc/pki/current')
    content = read(workdir, '/etc/../etc/pki/current/ca.crt')
    assert [(s.path, s.want) for s in content.steps] == [
        ('/', MAY_EXEC),  # etc
        ('/etc', MAY_EXEC),  # ..
        ('/', MAY_EXEC),  # etc
        ('/etc', MAY_EXEC),  # pki
        ('/etc/pki', MAY_EXEC),  # current, a link to /etc/pki/real: the walk starts again at the root
        ('/', MAY_EXEC),
        ('/etc', MAY_EXEC),
        ('/etc/pki', MAY_EXEC),
        ('/etc/pki/real', MAY_EXEC),  # ca.crt
        ('/etc/pki/real/ca.crt', MAY_READ),
    ]
    assert stat.S_IMODE(content.steps[-1].mode) == 0o640 and stat.S_ISREG(content.steps[-1].mode)
    assert all(stat.S_ISDIR(s.mode) for s in content.steps[:-1])


def test_walk_from_the_working_directory_starts_there(workdir):
    write(f'{workdir}/srv/pki/ca.crt', b'x')
    content = read_file_in_root(workdir, f'{workdir}/srv', 'pki/ca.crt', LIMIT)
    assert [s.path for s in content.steps] == ['.', './pki', './pki/ca.crt']


@needs_root
def test_walk_records_owners_and_acls_of_directories_and_the_file(workdir):
    ca = write(f'{workdir}/pki/ca.crt', b'x', mode=0o640)
    os.chown(ca, 0, 1234)
    entries = ((ACL_USER_OBJ, 7, UNDEFINED), (ACL_USER, 1, 65534), (ACL_GROUP_OBJ, 5, UNDEFINED))
    entries += ((ACL_MASK, 5, UNDEFINED), (ACL_OTHER, 0, UNDEFINED))
    os.setxattr(
        f'{workdir}/pki',
        POSIX_ACL_ACCESS_XATTR,
        struct.pack('<I', 2) + b''.join(struct.pack('<HHI', *e) for e in entries),
    )
    directory, file = read(workdir, '/pki/ca.crt').steps[-2:]
    assert directory.path == '/pki' and directory.acl == tuple(AclEntry(*e) for e in entries)
    assert (file.uid, file.gid, file.acl) == (0, 1234, None)
