"""Whether a process may read a file (pure): the kernel's discretionary access rules applied to the process's
credentials and to the mode, owner and POSIX ACL of every directory it searches on the way and of the file itself.

The rules are those of the kernel (fs/namei.c `generic_permission` and `acl_permission_check`, fs/posix_acl.c
`posix_acl_permission`, capabilities(7), acl(5)):

- the path walk needs search (MAY_EXEC) on every directory in which a name is looked up, `..` and the names of
  symbolic links included; opening the file read-only needs MAY_READ on the file;
- the owner (fsuid equal to the file's uid) gets the owner bits, and ACLs do not matter to it;
- otherwise, when the file has an access ACL and its mode has group bits, the ACL decides: named users, then the
  owning group and named groups (any matching entry that grants all the wanted bits), each limited by the mask,
  then other; with no ACL (or no group bits), the group bits when fsgid or a supplementary group owns the file and
  the group and other bits differ, else the other bits;
- when that denies: CAP_DAC_READ_SEARCH grants reading files and searching directories, CAP_DAC_OVERRIDE grants
  them too (executing a file only when one of its x bits is set), both only for files whose owner and group are
  mapped in the process's user namespace (`capable_wrt_inode_uidgid`).

Identifiers: the uids and gids in /proc/<pid>/status and those `stat` returns are both translated into the reader's
(the Agent's) user namespace, so they compare as the kernel compares its own ids; files are reached through the
apiserver's own root and mounts, so an idmapped mount shows owners as the kernel checks them for the apiserver. An id
with no mapping in the Agent's namespace shows as the overflow id (65534) on both sides: the check assumes the Agent
runs in the initial user namespace, as a privileged DaemonSet does. What is not modelled: Linux
security modules (SELinux, AppArmor) that may deny the apiserver more than its mode does, and the
fs.protected_symlinks restriction on following links in sticky world-writable directories.
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Sequence
from dataclasses import dataclass

MAY_EXEC, MAY_WRITE, MAY_READ = 1, 2, 4  # include/linux/fs.h
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2  # include/uapi/linux/capability.h (bit numbers)

# include/uapi/linux/posix_acl.h: entry tags and the undefined qualifier
ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
ACL_UNDEFINED_ID = 0xFFFFFFFF
# include/uapi/linux/posix_acl_xattr.h: a little-endian u32 version (2), then entries of le16 tag, le16 perm, le32 id
POSIX_ACL_XATTR_VERSION = 2
POSIX_ACL_ACCESS_XATTR = 'system.posix_acl_access'
_ACL_HEADER = struct.Struct('<I')
_ACL_ENTRY = struct.Struct('<HHI')
_ACL_TAG_NAMES = {
    ACL_USER_OBJ: 'user',
    ACL_USER: 'user',
    ACL_GROUP_OBJ: 'group',
    ACL_GROUP: 'group',
    ACL_MASK: 'mask',
    ACL_OTHER: 'other',
}


@dataclass(frozen=True)
class Credentials:
    """What the kernel checks file access against: /proc/<pid>/status's fsuid, fsgid, Groups and CapEff."""

    fsuid: int
    fsgid: int
    groups: frozenset[int] = frozenset()
    capabilities: int = 0  # the effective set, a bit per capability
    # Inclusive ranges of uids and gids (in the Agent's view) mapped in the process's user namespace; None when it
    # shares the Agent's user namespace (every id the Agent sees is mapped there).
    mapped_uids: tuple[tuple[int, int], ...] | None = None
    mapped_gids: tuple[tuple[int, int], ...] | None = None

    def has(self, capability: int) -> bool:
        return bool(self.capabilities >> capability & 1)

    def in_group(self, gid: int) -> bool:  # the kernel's in_group_p
        return gid == self.fsgid or gid in self.groups

    def describe(self) -> str:
        groups = ', '.join(str(g) for g in sorted(self.groups - {self.fsgid}))
        return f'uid {self.fsuid}, gid {self.fsgid}' + (f', groups {groups}' if groups else '')


def credentials_from_status(text: str) -> Credentials | None:
    """The credentials in the text of /proc/<pid>/status (proc(5): Uid and Gid are real, effective, saved and
    filesystem ids; Groups the supplementary groups; CapEff a hexadecimal mask), or None when a field is missing."""
    fields = {}
    for line in text.splitlines():
        name, sep, value = line.partition(':')
        if sep:
            fields[name] = value.split()
    try:
        fsuid = int(fields['Uid'][3])
        fsgid = int(fields['Gid'][3])
        groups = frozenset(int(g) for g in fields.get('Groups', ()))
        capabilities = int(fields['CapEff'][0], 16)
    except (KeyError, IndexError, ValueError):
        return None
    return Credentials(fsuid, fsgid, groups, capabilities)


def id_ranges_from_map(text: str) -> tuple[tuple[int, int], ...]:
    """The outside ids of /proc/<pid>/uid_map or gid_map (user_namespaces(7): lines of inside, outside, count) as
    inclusive ranges. Read from another user namespace, outside ids are in the reader's namespace."""
    ranges = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and all(p.isdigit() for p in parts) and int(parts[2]) > 0:
            outside, count = int(parts[1]), int(parts[2])
            ranges.append((outside, outside + count - 1))
    return tuple(ranges)


@dataclass(frozen=True)
class AclEntry:
    tag: int
    perm: int
    id: int = ACL_UNDEFINED_ID  # the user or group of ACL_USER and ACL_GROUP entries


def posix_acl_from_xattr(raw: bytes) -> tuple[AclEntry, ...]:
    """The entries of a system.posix_acl_access value; ValueError when it is not one (posix_acl_from_xattr)."""
    if len(raw) < _ACL_HEADER.size or (len(raw) - _ACL_HEADER.size) % _ACL_ENTRY.size:
        raise ValueError(f'a POSIX ACL of {len(raw)} bytes')
    (version,) = _ACL_HEADER.unpack_from(raw)
    if version != POSIX_ACL_XATTR_VERSION:
        raise ValueError(f'POSIX ACL version {version}')
    entries = tuple(AclEntry(*e) for e in _ACL_ENTRY.iter_unpack(raw[_ACL_HEADER.size :]))
    if not entries or any(e.tag not in _ACL_TAG_NAMES for e in entries):
        raise ValueError('a POSIX ACL with an unknown entry')
    return entries


@dataclass(frozen=True)
class PathStep:
    """One inode the kernel checks on the way to a file, as `stat` and getxattr show it to the Agent."""

    path: str  # as the process names it, for messages
    mode: int  # st_mode
    uid: int
    gid: int
    acl: tuple[AclEntry, ...] | None = None  # its access ACL; None when it has none
    want: int = MAY_EXEC  # MAY_EXEC for a directory searched, MAY_READ for the file opened
    acl_unreadable: str = ''  # why its ACL could not be read (the access then cannot be decided)


@dataclass(frozen=True)
class Access:
    allowed: bool | None  # None: could not be decided
    reason: str = ''  # why not, or why it could not be decided


def may_access(credentials: Credentials, step: PathStep) -> bool:
    """The kernel's generic_permission() for `step.want` on one inode."""
    if _acl_permission_check(credentials, step):
        return True
    want = step.want & (MAY_READ | MAY_WRITE | MAY_EXEC)
    if not _capable_wrt_inode(credentials, step):
        return False
    if stat.S_ISDIR(step.mode):  # DACs are overridable for directories
        if not want & MAY_WRITE and credentials.has(CAP_DAC_READ_SEARCH):
            return True
        return credentials.has(CAP_DAC_OVERRIDE)
    if want == MAY_READ and credentials.has(CAP_DAC_READ_SEARCH):
        return True
    # Read and write are always overridable; execute only when at least one execute bit is set.
    return (not want & MAY_EXEC or bool(step.mode & 0o111)) and credentials.has(CAP_DAC_OVERRIDE)


def _acl_permission_check(credentials: Credentials, step: PathStep) -> bool:
    mode, want = step.mode, step.want & 7
    if step.uid == credentials.fsuid:  # the owner: ACLs do not matter
        return not want & ~(mode >> 6)
    if step.acl is not None and mode & stat.S_IRWXG:
        return _posix_acl_permission(credentials, step, want)
    if want & (mode ^ (mode >> 3)) and credentials.in_group(step.gid):
        mode >>= 3
    return not want & ~mode


def _posix_acl_permission(credentials: Credentials, step: PathStep, want: int) -> bool:
    entries = step.acl or ()
    found = False
    for i, entry in enumerate(entries):
        if entry.tag == ACL_USER_OBJ:
            if step.uid == credentials.fsuid:
                return entry.perm & want == want
        elif entry.tag == ACL_USER:
            if entry.id == credentials.fsuid:
                return _masked(entries, i, want)
        elif entry.tag in (ACL_GROUP_OBJ, ACL_GROUP):
            gid = step.gid if entry.tag == ACL_GROUP_OBJ else entry.id
            if credentials.in_group(gid):
                found = True
                if entry.perm & want == want:
                    return _masked(entries, i, want)
        elif entry.tag == ACL_OTHER:
            return not found and entry.perm & want == want
    return False  # no ACL_OTHER entry: the kernel answers EIO


def _masked(entries: Sequence[AclEntry], i: int, want: int) -> bool:
    """The matched entry's permissions, limited by the ACL_MASK entry that follows it when there is one."""
    perm = entries[i].perm
    for entry in entries[i + 1 :]:
        if entry.tag == ACL_MASK:
            return perm & entry.perm & want == want
    return perm & want == want


def _capable_wrt_inode(credentials: Credentials, step: PathStep) -> bool:
    """Capabilities count only for an inode whose owner and group are mapped in the process's user namespace."""

    def mapped(value: int, ranges) -> bool:
        return ranges is None or any(low <= value <= high for low, high in ranges)

    return mapped(step.uid, credentials.mapped_uids) and mapped(step.gid, credentials.mapped_gids)


def path_access(credentials: Credentials | None, steps: Sequence[PathStep]) -> Access:
    """Whether a process with `credentials` may search every directory of `steps` and read its last file."""
    if credentials is None:
        return Access(None, 'its credentials could not be read')
    for step in steps:
        if step.acl_unreadable:
            return Access(None, f'the ACL of {step.path} could not be read ({step.acl_unreadable})')
        if may_access(credentials, step):
            continue
        what = 'read' if step.want & MAY_READ else 'search the directory'
        return Access(False, f'runs as {credentials.describe()} and cannot {what} {step.path} ({describe_inode(step)})')
    return Access(True)


def describe_inode(step: PathStep) -> str:
    """`root:root 0600`, with its ACL entries when it has an ACL."""
    text = f'{_id_name(step.uid)}:{_id_name(step.gid)} {stat.S_IMODE(step.mode):04o}'
    if step.acl is not None:
        text += ', ACL ' + ','.join(_acl_entry_text(e) for e in step.acl)
    return text


def _id_name(value: int) -> str:
    return 'root' if value == 0 else str(value)


def _acl_entry_text(entry: AclEntry) -> str:
    """As getfacl writes it: user::rw-, user:1000:r--, mask::r--."""
    perm = ''.join(c if entry.perm & bit else '-' for c, bit in (('r', 4), ('w', 2), ('x', 1)))
    qualifier = str(entry.id) if entry.tag in (ACL_USER, ACL_GROUP) else ''
    return f'{_ACL_TAG_NAMES[entry.tag]}:{qualifier}:{perm}'
