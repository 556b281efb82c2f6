"""Judging with the wire (pure): a Finding from the configuration, combined with what the running apiserver asked of
a client on the wire.

What the wire proves: whether the running process asks for client certificates at all, and which CA names it
accepts (the union of --client-ca-file and --requestheader-client-ca-file). What it cannot: which of the two flags a
CA comes from, nor that an advertised name belongs to the same key as the file's CA (names are compared, not keys).
"""

from __future__ import annotations

from dataclasses import replace

from .judging import CRITICAL, STATUS_SEVERITY, WARNING, Finding
from .wire import ADVERTISED, NO_REQUEST, WireResult
from .wire_names import display_name

# gauge values of cis_kubernetes.apiserver.wire.verified, and the wire_verified tag
WIRE_YES, WIRE_NO, WIRE_NOT_VERIFIABLE = 1, 0, -1
WIRE_TAG_VALUES = {WIRE_YES: 'yes', WIRE_NO: 'no', WIRE_NOT_VERIFIABLE: 'not_verifiable'}
_NAMES_SHOWN = 3


def missing_subjects(wire: WireResult, file_subjects: tuple[bytes, ...] | None) -> frozenset[bytes]:
    """Subjects of the CA file that the running apiserver does not advertise (empty when that cannot be told)."""
    if wire.outcome != ADVERTISED or not file_subjects:
        return frozenset()
    return frozenset(subject for subject in file_subjects if subject not in wire.names)


def _names(names) -> str:
    shown = [display_name(name) for name in list(names)[:_NAMES_SHOWN]]
    more = len(names) - len(shown)
    return '; '.join(shown) + (f' and {more} more' if more > 0 else '')


def _at_least(finding: Finding, status: int, lead: str, note: str, fix: str, lead_says_note: bool = False) -> Finding:
    """The finding raised to `status`, led by `lead` and fixed by `fix`, then what the configuration said; or, when
    it is already as bad, unchanged with `note` appended (the wire never lowers a verdict)."""
    if STATUS_SEVERITY[status] <= STATUS_SEVERITY[finding.status]:
        return replace(finding, reason=f'{finding.reason} {note}')
    between = '' if lead_says_note else f' {note}'
    reason = f'{lead}{between} The configuration said: {finding.reason}'
    return replace(finding, status=status, reason=reason, fix=fix)


def with_wire(
    finding: Finding,
    wire: WireResult | None,
    file_subjects: tuple[bytes, ...] | None,
    missing_before: frozenset[bytes] = frozenset(),
) -> Finding:
    """The finding as the wire confirms or contradicts it.

    `file_subjects`: the subjects of the certificates in the judged --client-ca-file (None when it was not read).
    `missing_before`: the file's subjects the previous probe did not see advertised; a CA missing on two consecutive
    probes is a WARNING (the apiserver reloads its CA file within about a minute, so one miss may be a rotation).
    """
    if wire is None or not wire.verifiable:
        return finding  # unreachable: nothing changes; check.py shows why (tag, status page)
    who = finding.process.label if finding.process is not None else 'kube-apiserver'
    if wire.outcome == NO_REQUEST:
        lead = (
            f'FAIL: the running {who} sends no TLS CertificateRequest on {wire.address}: client certificate '
            'authentication is off in the running process, whatever its configuration says.'
        )
        fix = (
            'Restart kube-apiserver with its configuration, and check what starts it: a wrapper, an override or a '
            'stale process that runs without --client-ca-file.'
        )
        note = f'On the wire, {wire.address} sends no CertificateRequest.'
        return _at_least(finding, CRITICAL, lead, note, fix, lead_says_note=True)
    advertised = (
        f'On the wire, {wire.address} accepts client certificates from {len(wire.names)} CA name(s) '
        f'({_names(wire.names)})'
        if wire.names
        else f'On the wire, {wire.address} asks for a client certificate but names no CA'
    )
    if not file_subjects:
        if finding.status == CRITICAL and not finding.ca_file:  # the configuration says --client-ca-file is off
            note = (
                f'{advertised}; these can come from --requestheader-client-ca-file, which does not satisfy the control.'
            )
        else:  # the file was not read, or the configuration cannot be judged (MicroShift)
            note = (
                f'{advertised}: client certificate authentication is on in the running process, but the wire cannot '
                'tell --client-ca-file from --requestheader-client-ca-file.'
            )
        return replace(finding, reason=f'{finding.reason} {note}')
    missing = [subject for subject in file_subjects if subject not in wire.names]
    if not missing:
        note = (
            f'Confirmed on the wire: {wire.address} advertises every CA subject of {finding.ca_file} '
            f'({len(file_subjects)}).'
        )
        return replace(finding, reason=f'{finding.reason} {note}')
    missed_twice = [subject for subject in missing if subject in missing_before]
    if not missed_twice:
        note = (
            f'{advertised}; {_names(missing)} of {finding.ca_file} is not advertised yet: checked again on the '
            'next probe (the apiserver reloads the file within about a minute).'
        )
        return replace(finding, reason=f'{finding.reason} {note}')
    lead = (
        f'WARNING: the running {who} has not loaded the CA {_names(missed_twice)} of {finding.ca_file}: it is not '
        f'among the CA names {wire.address} advertises, on two consecutive probes.'
    )
    fix = (
        f'Restart kube-apiserver so that it loads {finding.ca_file} (it reloads a changed file within about a minute '
        'otherwise), and check that the running process reads this path and not another.'
    )
    return _at_least(finding, WARNING, lead, f'{advertised}.', fix)


def wire_verified(
    wire: WireResult | None, file_subjects: tuple[bytes, ...] | None, missing_before: frozenset[bytes] = frozenset()
) -> int:
    """WIRE_YES: every CA of the file is advertised. WIRE_NO: no CertificateRequest, or a CA of the file missing on
    two consecutive probes. Otherwise WIRE_NOT_VERIFIABLE (unreachable, no file to compare, a first miss)."""
    if wire is None or not wire.verifiable:
        return WIRE_NOT_VERIFIABLE
    if wire.outcome == NO_REQUEST:
        return WIRE_NO
    if not file_subjects:
        return WIRE_NOT_VERIFIABLE
    missing = missing_subjects(wire, file_subjects)
    if not missing:
        return WIRE_YES
    return WIRE_NO if missing & missing_before else WIRE_NOT_VERIFIABLE
