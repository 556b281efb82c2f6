"""What the check says about a verdict: the remediation, the compliance status and the event's text."""

from __future__ import annotations

from datetime import UTC, datetime

from .control import CONTROL
from .judging import Finding


def remediation(distribution: str) -> str:
    return CONTROL.remediation.get(distribution, CONTROL.remediation['kubernetes'])


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
