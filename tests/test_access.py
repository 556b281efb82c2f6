"""Whether kube-apiserver itself may read its client CA file: the kernel's rules over its credentials (access.py).

One table of cases is judged three ways: by the pure function on hand-built inodes, by the same function on real
files (modes, owners, POSIX ACLs) walked by files_in_root, and by the kernel itself, a child with those credentials
opening the file. The kernel is the oracle: the table's expected column must be what it answers.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import struct
import subprocess
import time
from dataclasses import dataclass

import pytest

from datadog_checks.cis_kubernetes.access import (
    ACL_GROUP,
    ACL_GROUP_OBJ,
    ACL_MASK,
    ACL_OTHER,
    ACL_USER,
    ACL_USER_OBJ,
    CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH,
    MAY_EXEC,
    MAY_READ,
    POSIX_ACL_ACCESS_XATTR,
    AclEntry,
    Credentials,
    PathStep,
    credentials_from_status,
    id_ranges_from_map,
    path_access,
    posix_acl_from_xattr,
)
from datadog_checks.cis_kubernetes.files_in_root import read_file_in_root
from datadog_checks.cis_kubernetes.procfs import process_credentials
from devtools.standin import set_credentials
from tests.conftest import needs_root

NOBODY = 65534
OTHER_USER, OTHER_GROUP = 1000, 1234
UNDEFINED = 0xFFFFFFFF


def acl_xattr(*entries: tuple[int, int, int]) -> bytes:
    """A system.posix_acl_access value (include/uapi/linux/posix_acl_xattr.h: le32 version 2, then le16 tag,
    le16 perm, le32 id per entry, sorted by tag then id as the kernel requires)."""
    return struct.pack('<I', 2) + b''.join(struct.pack('<HHI', *e) for e in sorted(entries))


def acl(*entries: tuple[int, int, int]) -> tuple[AclEntry, ...] | None:
    return posix_acl_from_xattr(acl_xattr(*entries)) if entries else None


def u_obj(perm):
    return (ACL_USER_OBJ, perm, UNDEFINED)


def g_obj(perm):
    return (ACL_GROUP_OBJ, perm, UNDEFINED)


def mask(perm):
    return (ACL_MASK, perm, UNDEFINED)


def other(perm):
    return (ACL_OTHER, perm, UNDEFINED)


@dataclass(frozen=True)
class Case:
    name: str
    file_mode: int
    allowed: bool  # what the kernel answers
    file_owner: tuple[int, int] = (0, 0)
    file_acl: tuple[tuple[int, int, int], ...] = ()
    dir_mode: int = 0o755
    dir_owner: tuple[int, int] = (0, 0)
    dir_acl: tuple[tuple[int, int, int], ...] = ()
    uid: int = NOBODY
    gid: int = NOBODY
    groups: tuple[int, ...] = ()
    caps: tuple[int, ...] = ()


CASES = [
    # Talos writes the apiserver's ca.crt 0400 and chowns it to the apiserver's user (siderolabs/talos,
    # internal/app/machined/pkg/controllers/k8s, the static pod secrets controller: os.WriteFile(..., 0o400) then
    # os.Chown(..., KubernetesAPIServerRunUser, KubernetesAPIServerRunGroup) = 65534:65534).
    Case('talos_layout_owner_reads', 0o400, True, file_owner=(NOBODY, NOBODY)),
    Case('root_owned_0600_denies_another_user', 0o600, False),
    Case('root_owned_0644_others_read', 0o644, True),
    Case('owner_bits_win_over_other_bits', 0o044, False, file_owner=(NOBODY, 0)),
    Case('group_read_through_fsgid', 0o640, True, file_owner=(0, OTHER_GROUP), gid=OTHER_GROUP),
    Case('group_read_through_supplementary_group', 0o640, True, file_owner=(0, OTHER_GROUP), groups=(OTHER_GROUP,)),
    Case('group_bits_win_over_other_bits', 0o604, False, file_owner=(0, OTHER_GROUP), groups=(OTHER_GROUP,)),
    Case('other_bits_when_not_in_the_group', 0o604, True, file_owner=(0, OTHER_GROUP)),
    Case('acl_named_user_reads', 0o640, True, file_acl=(u_obj(6), (ACL_USER, 4, NOBODY), g_obj(4), mask(4), other(0))),
    Case(
        'acl_named_user_limited_by_mask',
        0o610,
        False,
        file_acl=(u_obj(6), (ACL_USER, 4, NOBODY), g_obj(0), mask(1), other(0)),
    ),
    Case(
        # The group bits (the mask) are 0: the kernel skips the ACL and the other bits decide (acl_permission_check).
        'acl_ignored_when_the_mask_is_empty',
        0o604,
        True,
        file_acl=(u_obj(6), (ACL_USER, 4, NOBODY), g_obj(0), mask(0), other(4)),
    ),
    Case(
        'acl_named_group_reads',
        0o640,
        True,
        file_acl=(u_obj(6), g_obj(0), (ACL_GROUP, 4, OTHER_GROUP), mask(4), other(0)),
        groups=(OTHER_GROUP,),
    ),
    Case(
        'acl_matching_group_without_read_excludes_other',
        0o644,
        False,
        file_acl=(u_obj(6), g_obj(0), (ACL_GROUP, 0, OTHER_GROUP), mask(4), other(4)),
        groups=(OTHER_GROUP,),
    ),
    Case(
        'acl_any_matching_group_entry_that_grants',
        0o640,
        True,
        file_acl=(u_obj(6), g_obj(0), (ACL_GROUP, 0, OTHER_GROUP), (ACL_GROUP, 4, NOBODY), mask(4), other(0)),
        groups=(OTHER_GROUP,),
    ),
    Case(
        'acl_named_user_of_another_user_does_not_apply',
        0o640,
        False,
        file_acl=(u_obj(6), (ACL_USER, 4, OTHER_USER), g_obj(0), mask(4), other(0)),
    ),
    Case('directory_without_search_denies', 0o644, False, dir_mode=0o700),
    Case('directory_search_without_read_suffices', 0o644, True, dir_mode=0o711),
    Case('directory_search_by_group', 0o644, True, dir_mode=0o710, dir_owner=(0, OTHER_GROUP), groups=(OTHER_GROUP,)),
    Case(
        'directory_acl_grants_search',
        0o644,
        True,
        dir_mode=0o710,
        dir_acl=(u_obj(7), (ACL_USER, 1, NOBODY), g_obj(0), mask(1), other(0)),
    ),
    Case('cap_dac_read_search_reads_any_file', 0o600, True, caps=(CAP_DAC_READ_SEARCH,)),
    Case('cap_dac_read_search_searches_any_directory', 0o644, True, dir_mode=0o700, caps=(CAP_DAC_READ_SEARCH,)),
    Case('cap_dac_override_reads_any_file', 0o000, True, caps=(CAP_DAC_OVERRIDE,)),
    Case('cap_dac_override_searches_any_directory', 0o644, True, dir_mode=0o000, caps=(CAP_DAC_OVERRIDE,)),
    Case('root_with_its_capabilities', 0o000, True, dir_mode=0o000, uid=0, gid=0, caps=(0, 1, 2, 3)),
    Case('root_without_capabilities_is_an_owner_like_any_other', 0o000, False, uid=0, gid=0),
    Case('root_without_capabilities_reads_its_own_0400', 0o400, True, uid=0, gid=0),
]


def steps_for(case: Case) -> list[PathStep]:
    """What files_in_root records for /<dir>/ca.crt: the root searched, the directory searched, the file read."""
    return [
        PathStep('/', stat.S_IFDIR | 0o755, 0, 0, None, MAY_EXEC),
        PathStep('/pki', stat.S_IFDIR | case.dir_mode, *case.dir_owner, acl(*case.dir_acl), MAY_EXEC),
        PathStep('/pki/ca.crt', stat.S_IFREG | case.file_mode, *case.file_owner, acl(*case.file_acl), MAY_READ),
    ]


def credentials_of(case: Case) -> Credentials:
    mask_bits = sum(1 << c for c in case.caps)
    return Credentials(case.uid, case.gid, frozenset(case.groups), mask_bits)


@pytest.mark.parametrize('case', CASES, ids=lambda c: c.name)
def test_permission_rules_on_the_table(case):
    access = path_access(credentials_of(case), steps_for(case))
    assert access.allowed is case.allowed, access.reason


def test_denial_names_the_credentials_the_file_its_owner_and_mode():
    access = path_access(Credentials(NOBODY, NOBODY), steps_for(Case('x', 0o600, False)))
    assert access.reason == 'runs as uid 65534, gid 65534 and cannot read /pki/ca.crt (root:root 0600)'


def test_denial_on_a_directory_says_it_cannot_search_it():
    access = path_access(
        Credentials(NOBODY, NOBODY, frozenset({7})), steps_for(Case('x', 0o644, False, dir_mode=0o700))
    )
    assert (
        access.reason == 'runs as uid 65534, gid 65534, groups 7 and cannot search the directory /pki (root:root 0700)'
    )


def test_denial_shows_the_acl_as_getfacl_writes_it():
    case = Case('x', 0o610, False, file_acl=(u_obj(6), (ACL_USER, 4, NOBODY), g_obj(0), mask(1), other(0)))
    reason = path_access(credentials_of(case), steps_for(case)).reason
    assert reason.endswith('(root:root 0610, ACL user::rw-,user:65534:r--,group::---,mask::--x,other::---)')


def test_unknown_credentials_or_acl_leave_the_access_undecided():
    assert path_access(None, steps_for(CASES[0])).allowed is None
    steps = [PathStep('/pki', stat.S_IFDIR | 0o755, 0, 0, acl_unreadable='I/O error')]
    access = path_access(Credentials(0, 0), steps)
    assert access.allowed is None and 'I/O error' in access.reason


def test_capabilities_count_only_for_files_mapped_in_the_processs_user_namespace():
    # capable_wrt_inode_uidgid: a process in a user namespace overrides DAC only on inodes whose owner and group
    # are mapped there.
    steps = steps_for(Case('x', 0o600, False))
    inside = Credentials(NOBODY, NOBODY, capabilities=1 << CAP_DAC_READ_SEARCH)
    assert path_access(inside, steps).allowed is True  # same user namespace as the Agent
    mapped_elsewhere = Credentials(
        NOBODY, NOBODY, capabilities=1 << CAP_DAC_READ_SEARCH, mapped_uids=((100000, 165535),), mapped_gids=((0, 0),)
    )
    assert path_access(mapped_elsewhere, steps).allowed is False
    root_mapped = Credentials(
        NOBODY, NOBODY, capabilities=1 << CAP_DAC_READ_SEARCH, mapped_uids=((0, 65535),), mapped_gids=((0, 65535),)
    )
    assert path_access(root_mapped, steps).allowed is True


def test_id_map_lines_become_ranges_of_outside_ids():
    assert id_ranges_from_map('         0     100000      65536\n') == ((100000, 165535),)
    assert id_ranges_from_map('0 0 4294967295\n') == ((0, 4294967294),)
    assert id_ranges_from_map('') == ()


# -- formats: /proc/<pid>/status and the ACL xattr ----------------------------------------------------------------

# proc(5) layout; Groups and CapEff as a hardened apiserver shows them (Talos: uid/gid 65534, capabilities dropped
# but NET_BIND_SERVICE, bit 10). Inferred from Talos's pod spec, not pasted from a node.
STATUS_SAMPLE = """Name:\tkube-apiserver
Umask:\t0022
State:\tS (sleeping)
Uid:\t65534\t65534\t65534\t65534
Gid:\t65534\t65534\t65534\t65534
FDSize:\t256
Groups:\t65534 10 \n\
CapInh:\t0000000000000000
CapPrm:\t0000000000000400
CapEff:\t0000000000000400
"""


def test_credentials_from_status_take_the_filesystem_ids_groups_and_effective_capabilities():
    credentials = credentials_from_status(STATUS_SAMPLE.replace('65534\t65534\t65534\t65534', '0\t0\t0\t65534', 1))
    assert credentials == Credentials(65534, 65534, frozenset({65534, 10}), 0x400)
    assert credentials_from_status('Name:\tx\n') is None


def test_credentials_of_a_real_process():
    with open('/proc/self/status') as f:
        credentials = credentials_from_status(f.read())
    assert (credentials.fsuid, credentials.fsgid) == (os.getuid(), os.getgid())
    assert credentials.groups == frozenset(os.getgroups())


def test_empty_groups_line_is_no_group():
    assert credentials_from_status(STATUS_SAMPLE.replace('65534 10 ', ' ')).groups == frozenset()


@pytest.mark.parametrize(
    'raw',
    [
        b'',
        b'\x02\x00\x00',
        acl_xattr(u_obj(6))[:-1],
        b'\x01\x00\x00\x00' + acl_xattr(u_obj(6))[4:],
        acl_xattr((0x40, 4, 0)),
    ],
    ids=['empty', 'short_header', 'truncated_entry', 'version_1', 'unknown_tag'],
)
def test_malformed_acl_values_are_refused(raw):
    with pytest.raises(ValueError):
        posix_acl_from_xattr(raw)


@needs_root
@pytest.mark.skipif(shutil.which('setfacl') is None, reason="setfacl (Debian's acl package) is not installed")
def test_acl_written_by_setfacl_reads_as_its_entries(workdir):
    path = os.path.join(workdir, 'ca.crt')
    open(path, 'wb').close()
    subprocess.run(['setfacl', '-m', f'u:{NOBODY}:r,g:{OTHER_GROUP}:rx,m::r,o::-', path], check=True)
    raw = os.getxattr(path, POSIX_ACL_ACCESS_XATTR)
    assert raw == acl_xattr(u_obj(6), (ACL_USER, 4, NOBODY), g_obj(4), (ACL_GROUP, 5, OTHER_GROUP), mask(4), other(0))
    assert posix_acl_from_xattr(raw)[1] == AclEntry(ACL_USER, 4, NOBODY)


# -- the kernel as the oracle --------------------------------------------------------------------------------------


def make_files(workdir: str, case: Case) -> str:
    directory = os.path.join(workdir, 'pki')
    os.mkdir(directory)
    path = os.path.join(directory, 'ca.crt')
    with open(path, 'wb') as f:
        f.write(b'x')
    for target, mode, owner, entries in (
        (path, case.file_mode, case.file_owner, case.file_acl),
        (directory, case.dir_mode, case.dir_owner, case.dir_acl),
    ):
        os.chown(target, *owner)
        os.chmod(target, mode)
        if entries:
            os.setxattr(target, POSIX_ACL_ACCESS_XATTR, acl_xattr(*entries))
            assert stat.S_IMODE(os.stat(target).st_mode) == mode, 'the case must give the mode the ACL implies'
    return path


def kernel_answer(case: Case, path: str) -> tuple[bool, str]:
    """(whether a child with the case's credentials opens `path` read-only, that child's /proc/self/status)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            set_credentials(case.uid, case.gid, case.groups, case.caps)
            try:
                os.close(os.open(path, os.O_RDONLY))
                opened = True
            except PermissionError:
                opened = False
            with open('/proc/self/status') as f:
                answer = {'opened': opened, 'status': f.read()}
        except BaseException as e:
            answer = {'error': f'{type(e).__name__}: {e}'}
        os.write(write_end, json.dumps(answer).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, 'rb') as f:
        answer = json.loads(f.read())
    assert 'error' not in answer, answer.get('error')
    return answer['opened'], answer['status']


@needs_root
@pytest.mark.parametrize('case', CASES, ids=lambda c: c.name)
def test_permission_rules_agree_with_the_kernel(case, workdir):
    path = make_files(workdir, case)
    opened, status = kernel_answer(case, path)
    assert opened is case.allowed, 'the table disagrees with the kernel'
    content = read_file_in_root('/', '/', path, 1 << 20)
    assert content.data == b'x'
    access = path_access(credentials_from_status(status), content.steps)
    assert access.allowed is opened, access.reason


# -- user namespaces ---------------------------------------------------------------------------------------------


def in_new_user_namespace(*argv: str) -> subprocess.CompletedProcess:
    """`argv` as root of a new user namespace in which only our own uid and gid (0) are mapped."""
    return subprocess.run(['unshare', '--user', '--map-root-user', *argv], capture_output=True, timeout=10)


USERNS_OK = shutil.which('unshare') is not None and os.geteuid() == 0 and in_new_user_namespace('true').returncode == 0


@pytest.mark.skipif(not USERNS_OK, reason='needs root and unshare(1) allowed to create a user namespace')
@pytest.mark.parametrize('owner', [0, NOBODY], ids=['owned_by_a_mapped_uid', 'owned_by_an_unmapped_uid'])
def test_capabilities_in_another_user_namespace_follow_its_id_map(workdir, owner):
    path = os.path.join(workdir, 'ca.crt')
    with open(path, 'wb') as f:
        f.write(b'x')
    os.chown(path, owner, owner)
    os.chmod(path, 0o000)  # only a capability reads it: CAP_DAC_OVERRIDE in the namespace, if the owner is mapped
    kernel_allows = in_new_user_namespace('cat', path).returncode == 0
    process = subprocess.Popen(['unshare', '--user', '--map-root-user', 'sleep', '30'])
    try:
        for _ in range(500):  # until unshare has entered the namespace, written its id maps and exec'd sleep
            with open(f'/proc/{process.pid}/comm') as comm:
                if comm.read().strip() == 'sleep':
                    break
            time.sleep(0.01)
        credentials = process_credentials('/proc', process.pid)
    finally:
        process.kill()
        process.wait()
    assert credentials.mapped_uids == ((0, 0),) and credentials.mapped_gids == ((0, 0),)
    assert credentials.has(CAP_DAC_OVERRIDE)  # in its own namespace, yet not over an unmapped file
    content = read_file_in_root('/', '/', path, 1 << 20)
    assert path_access(credentials, content.steps).allowed is kernel_allows is (owner == 0)


def test_credentials_of_a_process_that_is_gone_are_unknown(workdir):
    assert process_credentials(workdir, 12345) is None  # a procfs without that process


def test_credentials_of_a_process_in_our_user_namespace_need_no_id_map():
    credentials = process_credentials('/proc', os.getpid())
    assert (credentials.fsuid, credentials.mapped_uids, credentials.mapped_gids) == (os.geteuid(), None, None)
