"""What the check announces beyond its service check and gauges: an event when the node's compliance status
changes (announcements.py decides when), and the node's finding as a log for Cloud SIEM (findings.py).

A mixin of the AgentCheck, kept apart so that check.py reads as the pipeline's wiring; with check.py, the only module
that talks to the Agent.
"""

from __future__ import annotations

from datadog_checks.base import is_affirmative

try:  # the Agent provides this module; outside it, the stub from datadog_checks.base
    import datadog_agent
except ImportError:  # pragma: no cover - depends on where the check runs
    from datadog_checks.base.stubs import datadog_agent

from .announcements import Announcement, announcement_due, announcement_from_cache, announcement_to_cache
from .control import CONTROL
from .findings import (
    SentFinding,
    finding_due,
    finding_fingerprint,
    finding_key,
    finding_log,
    finding_result,
    sent_finding_from_cache,
    sent_finding_to_cache,
)
from .judging import WARNING, Finding
from .reporting import agent_text, compliance_status, event_text, event_title, remediation


class Announcing:
    """Events and finding logs, each with its state: in memory, and in the Agent's persistent cache."""

    STATE_KEY = 'announced_status'
    FINDING_KEY = 'sent_finding'

    _announcement: Announcement | None = None
    _announcement_read = False
    _sent_finding: SentFinding | None = None
    _sent_finding_read = False
    _sent_key: tuple | None = None  # finding_key of the last finding sent
    _logs_enabled: bool | None = None  # the Agent's logs_enabled, read at the first finding
    _logs_off_logged = False

    def _announce(self, verdict: Finding, now: float) -> None:
        """An event when the node's compliance status changes (or an unchanged failure is due again)."""
        status = compliance_status(verdict)
        if status is None:
            return
        monotonic = self._monotonic()
        if not self._announcement_read:  # once: later runs trust memory, so an unwritable cache costs one repeat
            self._announcement_read = True
            self._announcement = announcement_from_cache(self._read_cache(self.STATE_KEY), now, monotonic)
        if not announcement_due(self._announcement, status, monotonic, self.settings.event_resend_interval):
            return
        host = datadog_agent.get_hostname()
        alert_type = {'failed': 'error', 'passed': 'success', 'not_verified': 'warning'}[status]
        if status == 'passed' and verdict.status == WARNING:
            alert_type = 'warning'
        self.event(
            {
                'timestamp': int(now),
                'event_type': f'{CONTROL.framework}.{CONTROL.id}',
                'msg_title': agent_text(self.sanitize(event_title(verdict, status, host))),
                'msg_text': agent_text(self.sanitize(event_text(verdict))),
                'alert_type': alert_type,
                'priority': 'normal',
                'host': host,
                'aggregation_key': f'{CONTROL.rule_id}:{host}',
                'source_type_name': self.__NAMESPACE__,
                'tags': [*self._verdict_tags(verdict), *self._compliance_tags(status)],
            }
        )
        self._announcement = Announcement(status, now, monotonic)
        self.write_persistent_cache(self.STATE_KEY, announcement_to_cache(self._announcement))

    def _read_cache(self, key: str) -> str:
        try:
            return self.read_persistent_cache(key)
        except Exception:  # the Agent answers '' on its own errors; a stub or a future Agent might raise
            return ''

    def _send_finding(self, verdict: Finding, now: float) -> None:
        """The node's finding as a log (findings.py), on change and again every findings_log_interval."""
        if self._logs_enabled is None:  # the Agent reads logs_enabled at start: once per Agent is enough
            self._logs_enabled = is_affirmative(datadog_agent.get_config('logs_enabled'))
        if not self._logs_enabled:
            self._warn_logs_off()
        monotonic = self._monotonic()
        if not self._sent_finding_read:
            self._sent_finding_read = True
            self._sent_finding = sent_finding_from_cache(self._read_cache(self.FINDING_KEY), now, monotonic)
        interval = self.settings.findings_log_interval
        key = finding_key(verdict)
        if key == self._sent_key and not finding_due(self._sent_finding, '', monotonic, interval, unchanged=True):
            return  # the same finding as the last one sent, and not yet due again: no log to build
        host = datadog_agent.get_hostname()
        log = finding_log(
            verdict,
            host=host,
            now=now,
            interval=interval,
            benchmark_version=self.settings.benchmark_version,
            remediation=remediation(verdict),
        )
        fingerprint = finding_fingerprint(log)
        if not finding_due(self._sent_finding, fingerprint, monotonic, interval):
            self._sent_key = key  # the finding sent before this Agent restarted
            return
        log['ddtags'] = ','.join([*self._verdict_tags(verdict), *self._compliance_tags(finding_result(verdict))])
        self.send_log(self._for_agent(log))
        self._sent_finding = SentFinding(fingerprint, now, monotonic)
        self._sent_key = key
        self.write_persistent_cache(self.FINDING_KEY, sent_finding_to_cache(self._sent_finding))

    def _warn_logs_off(self) -> None:
        """On the status page after every run (it shows the last run's warnings); in the Agent's log once."""
        message = (
            f"CIS {CONTROL.id} findings are sent as logs, but the Agent's log collection is off, so they are dropped: "
            'set `logs_enabled: true` in datadog.yaml (DD_LOGS_ENABLED=true) and keep the `logs:` entry of conf.yaml, '
            'or set `findings_logs: false`. Service checks, metrics and events are sent as before.'
        )
        if self._logs_off_logged:
            if message not in self.warnings:  # the Agent takes them after each run; a caller that does not
                self.warnings.append(message)  # must not see them pile up
        else:
            self._logs_off_logged = True
            self.warning(message)

    def _compliance_tags(self, status: str) -> list[str]:
        return [
            f'compliance_framework:{CONTROL.framework}',
            f'compliance_rule:{CONTROL.rule_id}',
            f'compliance_status:{status}',
        ]

    def _for_agent(self, value):
        """Every string of a log, scrubbed of secrets and as text the Agent accepts."""
        if isinstance(value, str):
            return agent_text(self.sanitize(value))
        if isinstance(value, dict):
            return {key: self._for_agent(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._for_agent(item) for item in value]
        return value
