"""The finding log: one structured log per node and evaluation that has a verdict, shaped like the findings of
Datadog's own compliance module (datadog-agent pkg/compliance/data.go, CheckEvent: agent_rule_id, agent_framework_id,
result, resource_type, resource_id, expire_at, tags, data), so that Cloud SIEM rules and log queries written for those
carry over. It goes out through AgentCheck.send_log to Logs, where the rules in assets/security/ turn it into signals.

Cadence: a finding whenever what it says changes, and an unchanged one again every `findings_log_interval` seconds
(default 1,200, as the compliance module resends each finding every 20 minutes), so that a signal's evaluation window
(1,800 s in the shipped rules) always holds a current finding for every control-plane node. Each finding carries
`expire_at`, two intervals later: one that is older describes a node that stopped reporting.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from .control import CONTROL
from .judging import Finding

RESOURCE_TYPE = 'kubernetes_master_node'  # as Datadog's compliance module names a control-plane node
EVALUATOR = 'cis_kubernetes'
RESULT_BY_COMPLIANCE = {True: 'passed', False: 'failed', None: 'error'}  # UNKNOWN is an error, never a pass
STATUS_NAMES = {0: 'OK', 1: 'WARNING', 2: 'CRITICAL', 3: 'UNKNOWN'}
MAX_CERTIFICATES_SHOWN = 20


@dataclass(frozen=True)
class SentFinding:
    fingerprint: str  # what the finding says, without what changes on its own (days left, times)
    at: float  # wall-clock time, kept in the persistent cache
    since: float  # monotonic time, in this Agent process


def finding_result(finding: Finding) -> str:
    return RESULT_BY_COMPLIANCE[finding.compliant]


def finding_log(
    verdict: Finding, *, host: str, now: float, interval: int, benchmark_version: str, remediation: str
) -> dict:
    """The log for a node's verdict (the worst finding over its apiserver processes)."""
    process = verdict.process
    bundle = verdict.bundle
    data: dict = {
        'status': STATUS_NAMES[verdict.status],
        'reason': verdict.reason,
        'distribution': verdict.distribution,
        'value_source': verdict.source,
        'client_ca_file': verdict.ca_file,
        'client_ca_file_set': bool(verdict.ca_file),
        'days_left': verdict.days_left,
    }
    if process is not None:
        data['process'] = {'name': process.name, 'pid': process.pid}
    if bundle is not None:
        data['certificates'] = len(bundle.certificates)
        data['ca_certificates'] = [
            {'subject': cert.subject, 'not_after': _iso(cert.not_after)}
            for cert in bundle.ca_certificates[:MAX_CERTIFICATES_SHOWN]
        ]
    compliance = {'framework': CONTROL.framework, 'control': CONTROL.id, 'rule_id': CONTROL.rule_id}
    if benchmark_version:
        compliance.update(benchmark_version=benchmark_version, benchmark_control=CONTROL.numbering[benchmark_version])
    return {
        'timestamp': now,
        'message': verdict.reason,
        'evaluator': EVALUATOR,
        'agent_rule_id': CONTROL.rule_id,
        'agent_framework_id': CONTROL.framework,
        'result': finding_result(verdict),
        'resource_type': RESOURCE_TYPE,
        'resource_id': f'{host}_{RESOURCE_TYPE}',
        'expire_at': _iso(now + 2 * interval) if interval else None,
        'compliance': compliance,
        'data': data,
        'remediation': remediation,
        'title': CONTROL.title,
    }


def finding_fingerprint(log: dict) -> str:
    """What a finding says, without what changes by itself between evaluations."""
    stable = {key: value for key, value in log.items() if key not in ('timestamp', 'expire_at', 'message')}
    stable['data'] = {key: value for key, value in log['data'].items() if key not in ('days_left', 'reason')}
    # The canonical text itself, a few KiB: a digest would need hashlib, whose OpenSSL costs the Agent 3.7 MB.
    return json.dumps(stable, sort_keys=True, separators=(',', ':'), default=str)


def finding_due(
    previous: SentFinding | None, fingerprint: str, monotonic: float, interval: int, unchanged: bool = False
) -> bool:
    """Whether to send: a first finding, a changed one (`unchanged`: known to be the same without a fingerprint), or
    the same one `interval` seconds after it was last sent."""
    if previous is None or (not unchanged and previous.fingerprint != fingerprint):
        return True
    return interval > 0 and monotonic - previous.since >= interval


NUMBER = re.compile(r'\d+(\.\d+)?')


def finding_key(verdict: Finding) -> tuple:
    """A cheap stand-in for the fingerprint within one Agent process: equal keys, equal findings (the bundle is the
    check's cached object while the file's bytes are unchanged; numbers such as days left are left out)."""
    process = verdict.process
    return (
        verdict.status,
        verdict.compliant,
        NUMBER.sub('#', verdict.reason),
        verdict.ca_file,
        verdict.distribution,
        verdict.source,
        None if process is None else (process.pid, process.name),
        verdict.bundle,
    )


def sent_finding_from_cache(raw: object, now: float, monotonic: float) -> SentFinding | None:
    """The last finding sent, as the persistent cache says; None for anything malformed."""
    try:
        state = json.loads(raw) if isinstance(raw, str | bytes) else None
    except ValueError:
        return None
    if not isinstance(state, dict):
        return None
    fingerprint, at = state.get('fingerprint'), state.get('at')
    if not isinstance(fingerprint, str) or isinstance(at, bool) or not isinstance(at, int | float):
        return None
    if not math.isfinite(at):
        return None
    elapsed = now - at if at <= now else 0.0  # sent "in the future": the clock was set back since
    return SentFinding(fingerprint, float(at), monotonic - elapsed)


def sent_finding_to_cache(sent: SentFinding) -> str:
    return json.dumps({'fingerprint': sent.fingerprint, 'at': sent.at})


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime('%Y-%m-%dT%H:%M:%SZ')
