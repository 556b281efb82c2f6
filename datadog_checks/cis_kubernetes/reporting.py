"""What the check says about a verdict: its fix, the compliance status, the event's title and text, all as text the
Agent accepts."""

from __future__ import annotations

from datetime import UTC, datetime

from .control import CONTROL, flag_fix
from .judging import WARNING, Finding

TITLE_LIMIT = 100


def remediation(finding: Finding) -> str:
    """The finding's own fix, or where to set the flag (a finding log's remediation, even when it passes)."""
    return finding.fix or flag_fix(finding.distribution)


def message(finding: Finding, others: int = 0) -> str:
    """A service check message: the problem first, then its own fix."""
    text = finding.reason + (f' ({others} more apiserver process(es) judged)' if others else '')
    return f'{text} Fix: {finding.fix}' if finding.fix else text


def event_title(finding: Finding, status: str, host: str) -> str:
    """What happened, in a line: a pass with a warning (an expiring CA) says what the warning is."""
    if status == 'failed':
        what = f'failed on {host}: kube-apiserver client certificate authentication'
    elif status == 'not_verified':
        what = f'not verified on {host}: --client-ca-file is set, the file could not be verified'
    elif finding.status == WARNING:
        headline = finding.reason.removeprefix('WARNING: ')
        what = f'passed with a warning on {host}: {headline}'  # compliant, but what the warning is comes first
        if len(what) > TITLE_LIMIT:
            what = what[: TITLE_LIMIT - 1] + '…'
    else:
        what = f'passed on {host}: kube-apiserver authenticates clients by certificate'
    return f'CIS Kubernetes {CONTROL.id} {what}'


def compliance_status(finding: Finding) -> str | None:
    """passed, failed, not_verified (the flag is set but the file, or the apiserver's access to it, could not be
    verified), or None (nothing judged)."""
    if not finding.verified:
        return 'not_verified'
    if finding.compliant is None:
        return None
    return 'passed' if finding.compliant else 'failed'


def event_text(finding: Finding) -> str:
    lines = ['%%%', finding.reason, '']
    if finding.fix:
        lines += [f'**Fix:** {finding.fix}', '']
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
            lines.append(f'  * CA `{cert.subject}`, valid until {_day(cert.not_after)}')
        for cert in [cert for cert in bundle.certificates if not cert.is_ca][:5]:
            lines.append(f'  * `{cert.subject}` cannot sign client certificates: it has {cert.signing_problem}')
    if finding.days_left is not None:
        lines.append(f'* Days until the earliest CA certificate expires: {finding.days_left:.1f}')
    lines += ['', f'**Why it matters:** {CONTROL.rationale}', '%%%']
    return '\n'.join(lines)


def _day(timestamp: float) -> str:
    """The date of a POSIX timestamp; Go reads years 0 to 9999, Python's datetime only from year 1."""
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime('%Y-%m-%d')
    except (ValueError, OverflowError, OSError):
        return 'a date before year 1' if timestamp < 0 else 'a date after year 9999'


def agent_text(text: str) -> str:
    """`text` as the Agent can take it: valid UTF-8 without NUL (rtloader refuses or drops anything else).

    A byte that was not UTF-8 in argv or a path (os.fsdecode turns it into a lone surrogate) is shown as \\xNN, as
    Go's %q shows it in kube-apiserver's own logs; a NUL as \\x00.
    """
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        pass
    else:
        if '\0' not in text:
            return text
    return ''.join(_escaped(character) for character in text)


def _escaped(character: str) -> str:
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for the byte code - 0xDC00
        return f'\\x{code - 0xDC00:02x}'
    if code == 0:
        return '\\x00'
    if 0xD800 <= code <= 0xDFFF:
        return f'\\u{code:04x}'
    return character
