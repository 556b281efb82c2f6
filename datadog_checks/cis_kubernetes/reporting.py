"""What the check says about a verdict: the remediation, the compliance status, the event's text, all as text the
Agent accepts."""

from __future__ import annotations

from datetime import UTC, datetime

from .control import CONTROL
from .judging import Finding


def remediation(distribution: str) -> str:
    return CONTROL.remediation.get(distribution, CONTROL.remediation['kubernetes'])


def compliance_status(finding: Finding) -> str | None:
    """passed, failed, not_verified (the flag is set but the file, or the apiserver's access to it, could not be
    verified), or None (nothing judged)."""
    if not finding.verified:
        return 'not_verified'
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
            lines.append(f'  * CA `{cert.subject}`, valid until {_day(cert.not_after)}')
        for cert in [cert for cert in bundle.certificates if not cert.is_ca][:5]:
            lines.append(f'  * `{cert.subject}` cannot sign client certificates: it has {cert.signing_problem}')
    if finding.days_left is not None:
        lines.append(f'* Days until the earliest CA certificate expires: {finding.days_left:.1f}')
    lines += ['', f'**Why it matters:** {CONTROL.rationale}', '', f'**Remediation:** {remediation}', '%%%']
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
