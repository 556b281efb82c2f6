"""The AgentCheck: wires the pipeline's steps and submits what they found.

    find apiserver processes -> read their effective flags -> open the CA file as the apiserver sees it
    -> judge -> report.

The single file for checks.d (checks.d/cis_kubernetes.py) is built from this package by devtools/amalgamate.py.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

import psutil

from datadog_checks.base import AgentCheck

try:  # the Agent provides this module; outside it, the stub from datadog_checks.base
    import datadog_agent
except ImportError:  # pragma: no cover - depends on where the check runs
    from datadog_checks.base.stubs import datadog_agent

from .access import Credentials, path_access
from .announcing import Announcing
from .ca_bundle import CaBundle, ca_bundle_from_pem
from .config import KNOWN_OPTIONS, Settings
from .control import CONTROL, CONTROL_TAG
from .distributions.client_ca import client_ca_setting
from .distributions.manifests import (
    KUBEADM_MANIFEST,
    RKE2_MANIFEST,
    STATIC_POD_MANIFESTS,
    ManifestSetting,
    manifest_setting,
    read_manifest,
)
from .distributions.rke2 import rke2_disables_apiserver
from .distributions.setting import ClientCaSetting
from .files_in_root import read_file_in_root
from .judging import Finding, against_manifest, judge, node_verdict
from .listeners import probe_apiserver
from .process_table import ProcessScan, scan_processes
from .processes import ApiserverProcess, is_same_process_running
from .procfs import process_credentials
from .reporting import agent_text, message
from .scrubbing import secret_flag_values
from .wire import WireResult
from .wire_names import pem_certificate_subjects
from .wire_verdict import WIRE_NOT_VERIFIABLE, WIRE_TAG_VALUES, WIRE_YES, missing_subjects, wire_verified, with_wire

# Supervisors whose presence says kube-apiserver should run here, and how a message says so.
SUPERVISOR_WITNESSES = {'rke2': 'an RKE2 server runs', 'k0s': 'a k0s controller runs'}


class CisKubernetesCheck(Announcing, AgentCheck):
    __NAMESPACE__ = 'cis_kubernetes'

    SERVICE_CHECK = 'apiserver.client_ca_file'
    METRIC_COMPLIANT = 'control.compliant'
    METRIC_PROCESSES = 'apiserver.processes'
    METRIC_DAYS_LEFT = 'apiserver.client_ca.days_left'
    METRIC_CERTIFICATES = 'apiserver.client_ca.certificates'
    METRIC_WIRE = 'apiserver.wire.verified'
    MESSAGE_LIMIT = 500  # what the Datadog API keeps of a service check message

    def __init__(self, name, init_config, instances):
        super().__init__(name, init_config, instances)
        self.settings = Settings.from_instance(self.instance or {})
        self.tags = [*self.settings.tags, CONTROL_TAG]
        if self.settings.benchmark_version:
            version = self.settings.benchmark_version
            self.tags += [f'cis_benchmark_version:{version}', f'cis_control:{CONTROL.numbering[version]}']
        self._scan_result = ProcessScan(apiservers=(), witnesses=frozenset())
        self._credentials: dict[tuple[int, int], Credentials] = {}  # each apiserver's, read once
        self._apiservers: list[ApiserverProcess] = []
        # Resolved once per process: what its distribution's configuration said when the process was first seen.
        self._client_ca: dict[tuple[int, int], ClientCaSetting] = {}
        self._manifests: dict[int, tuple[str, str | None]] = {}  # pid -> its static pod manifest and its value
        self._node_manifest: tuple[str | None, str | None, ManifestSetting | None] = (None, None, None)  # no apiserver
        self._scanned = False
        self._had_apiserver = False
        self._runs_since_scan = 0
        # The content last read from each CA file and what it holds: an unchanged file is compared, not parsed again.
        self._bundles: dict[str, tuple[bytes, CaBundle]] = {}
        self._manifest_texts: dict[str, tuple[bytes, ManifestSetting]] = {}  # path in a root -> its bytes, what it sets
        self._secrets: set[str] = set()
        self._clock = time.time  # wall-clock time of a run, for events and the persistent cache
        self._monotonic = time.monotonic  # time between announcements, immune to clock steps
        # The wire: per apiserver, its last probe, the file's subjects then, and those missing at the probe before.
        self._wire: dict[tuple[int, int], tuple[WireResult, tuple[bytes, ...] | None, frozenset[bytes]]] = {}
        self._wire_subjects: dict[str, tuple[bytes, tuple[bytes, ...]]] = {}  # CA file -> (content, subjects)
        self._wire_next = 0.0  # monotonic time of the next due probe

    def load_configuration_models(self, package_path=None):
        """Options are validated by Settings in __init__; the check ships no pydantic models.

        The base class would import pydantic (about 5 MB of the Agent's memory on every control-plane node) only to
        find no models; instead, unknown options are reported here as the base class's typo detection would.
        """
        unknown = sorted(o for o in self.instance or {} if isinstance(o, str) and o not in KNOWN_OPTIONS)
        if unknown:
            from difflib import get_close_matches  # only for a typo: difflib costs the Agent 1.4 MB
        for option in unknown:
            close = get_close_matches(option, KNOWN_OPTIONS, n=1)
            hint = f' (did you mean `{close[0]}`?)' if close else ''
            self.log.warning('Unknown option `%s` in the cis_kubernetes instance%s', option, hint)

    def check(self, _):
        try:
            self._evaluate()
        except Exception as e:  # never let an error escape into the Agent: report it instead
            import traceback  # only on this path: it costs the Agent memory on every node

            # The traceback is scrubbed here: a handler would format exc_info after the logger's own scrubbing.
            self.log.error(
                'CIS %s could not be evaluated: %s', CONTROL.id, agent_text(self.sanitize(traceback.format_exc()))
            )
            self.service_check(
                self.SERVICE_CHECK,
                AgentCheck.UNKNOWN,
                tags=self.tags,
                message=self._message(
                    f'UNKNOWN: the check could not evaluate CIS {CONTROL.id}: {type(e).__name__}: {e}'
                ),
            )

    # -- steps ---------------------------------------------------------------------------------------------------

    def _evaluate(self) -> None:
        procfs = self._procfs()
        apiservers = self._current_apiservers(procfs)
        self.gauge(self.METRIC_PROCESSES, len(apiservers), tags=self.tags)
        now = self._clock()
        if apiservers:
            findings = [self._finding(procfs, process, now) for process in apiservers]
            findings = self._with_wire(procfs, apiservers, findings)
        else:
            finding = self._finding_without_apiserver(procfs, now)
            if finding is None:
                self.log.debug('No kube-apiserver on this node: CIS %s does not apply here', CONTROL.id)
                return
            findings = [finding]
        self._report(findings, now)

    def _procfs(self) -> str:
        procfs = (datadog_agent.get_config('procfs_path') or psutil.PROCFS_PATH or '/proc').rstrip('/') or '/proc'
        if procfs != psutil.PROCFS_PATH:
            psutil.PROCFS_PATH = procfs  # as the Agent's own process check does, so psutil reads the host's /proc
        return procfs

    def _current_apiservers(self, procfs: str) -> list[ApiserverProcess]:
        """Known apiservers while they all still run. A full scan every `rescan_every` runs, at once when one is gone,
        and at every run while the apiserver this node had is missing (it is restarting)."""
        self._runs_since_scan += 1
        if (
            not self._scanned
            or self._runs_since_scan >= self.settings.rescan_every
            or (self._had_apiserver and not self._apiservers)
            or not all(is_same_process_running(procfs, p) for p in self._apiservers)
        ):
            self._scan(procfs)
        return self._apiservers

    def _scan(self, procfs: str) -> None:
        self._scan_result = scan_processes(procfs)
        etcd_only = [pid for name, pid in self._scan_result.supervisors if name == 'rke2']
        if etcd_only and all(rke2_disables_apiserver(procfs, pid) for pid in etcd_only):  # an etcd-only RKE2 server
            self._scan_result = replace(self._scan_result, witnesses=self._scan_result.witnesses - {'rke2'})
        self._apiservers = list(self._scan_result.apiservers)
        self._scanned = True
        self._runs_since_scan = 0
        known = {}
        self._manifests = {}
        for process in list(self._apiservers):
            key = (process.pid, process.start_ticks)
            setting = known[key] = self._client_ca.get(key) or client_ca_setting(procfs, process)
            if setting.no_apiserver:  # its distribution's own knob turned the apiserver off (k3s etcd-only server)
                self.log.debug('%s runs no kube-apiserver: %s', process.label, setting.no_apiserver)
                self._apiservers.remove(process)
        self._had_apiserver = self._had_apiserver or bool(self._apiservers)
        self._node_manifest = (None, None, None) if self._apiservers else self._find_node_manifest(procfs)
        for process in self._apiservers:
            for secret in secret_flag_values(process.flags):
                for text in {secret, agent_text(secret)}:  # as it is, and as a message would show it
                    if text not in self._secrets:
                        self._secrets.add(text)
                        self.register_secret(text)
            setting = known[(process.pid, process.start_ticks)]
            manifest = self._manifest_of(procfs, process, setting)
            if manifest is not None:
                self._manifests[process.pid] = manifest
        self._client_ca = known
        self._credentials = {key: value for key, value in self._credentials.items() if key in known}

    def _find_node_manifest(self, procfs: str) -> tuple[str | None, str | None, ManifestSetting | None]:
        """(path, distribution, what it sets) of a static pod manifest for kube-apiserver on the host."""
        host_root = self.settings.host_root or f'{procfs}/1/root'
        for path, distribution in ((KUBEADM_MANIFEST, 'kubeadm'), (RKE2_MANIFEST, 'rke2')):
            manifest = self._manifest(host_root, path)
            if manifest is not None:
                return path, distribution, manifest
        return None, None, None

    def _manifest(self, root: str, path: str) -> ManifestSetting | None:
        """What the static pod manifest at `path` in `root` sets, None without one. Every scan reads the manifest
        again; its text is parsed only when it changed (6.7 ms for a kubeadm manifest without libyaml)."""
        text = read_manifest(root, path)
        if text is None:
            return None
        key = f'{root}:{path}'
        cached = self._manifest_texts.get(key)
        if cached is None or cached[0] != text:
            if len(self._manifest_texts) >= 8:  # one entry per root and path: drop those of processes long gone
                self._manifest_texts.clear()
            cached = self._manifest_texts[key] = (text, manifest_setting(text))
        return cached[1]

    def _manifest_of(self, procfs: str, process: ApiserverProcess, setting: ClientCaSetting):
        """The static pod manifest the kubelet started this apiserver from, read in `host_root` or else in the root of
        the apiserver's parent (its container runtime's shim), which is the node's even for a kind node container."""
        path = STATIC_POD_MANIFESTS.get(setting.distribution) if process.kind == 'kube-apiserver' else None
        if path is None:
            return None
        node_root = self.settings.host_root or f'{procfs}/{process.ppid}/root'
        manifest = self._manifest(node_root, path)
        if manifest is None or not manifest.comparable:  # nothing to compare with: the running process is judged
            return None
        return path, manifest.value

    def _finding(self, procfs: str, process: ApiserverProcess, now: float) -> Finding:
        setting = self._client_ca[(process.pid, process.start_ticks)]
        base = f'{procfs}/{process.pid}'
        key = (process.pid, process.start_ticks)
        credentials = self._credentials.get(key)
        if credentials is None:  # read once per process: an apiserver does not change its ids or capabilities
            credentials = process_credentials(procfs, process.pid)
            if credentials is not None:
                self._credentials[key] = credentials
        finding = self._judge(process, setting, f'{base}/root', f'{base}/cwd', now, credentials)
        manifest = self._manifests.get(process.pid)
        return finding if manifest is None else against_manifest(finding, *manifest)

    def _judge(
        self, process, setting: ClientCaSetting, root: str, cwd: str, now: float, credentials: Credentials | None
    ) -> Finding:
        """`credentials`: the apiserver's, to decide whether it may read the file (None without a process)."""
        content = bundle = access = None
        if setting.value and not setting.unjudgeable:
            content = read_file_in_root(root, cwd, setting.value, self.settings.max_ca_file_size)
            if content.data is not None:
                bundle = self._bundle(f'{root}:{setting.value}', content.data)
                if process is not None:
                    access = path_access(credentials, content.steps)
        return judge(process, setting, content, bundle, now, self.settings.days_warning, access)

    def _finding_without_apiserver(self, procfs: str, now: float) -> Finding | None:
        """No apiserver process: expected but not running, not visible to the Agent, or not applicable (None)."""
        host_root = self.settings.host_root or f'{procfs}/1/root'
        witnesses = self._scan_result.witnesses
        path, distribution, manifest = self._node_manifest
        supervisor = next((name for name in SUPERVISOR_WITNESSES if name in witnesses), None)
        if supervisor or (path and 'kubelet' in witnesses):
            what = SUPERVISOR_WITNESSES[supervisor] if supervisor else f'its static pod manifest {path} is present'
            reason = (
                f'UNKNOWN: kube-apiserver is expected on this node ({what}) but is not running; CIS {CONTROL.id} '
                'cannot be judged until it starts.'
            )
            return Finding(AgentCheck.UNKNOWN, reason, distribution=supervisor or distribution)
        if path is None:
            if not self._scan_result.listed:
                return Finding(
                    AgentCheck.UNKNOWN, f"UNKNOWN: {procfs} lists no process: check the Agent's procfs_path."
                )
            if not self._scan_result.sees_others:
                reason = (
                    f"UNKNOWN: {procfs} hides other users' processes from the Agent (mounted with hidepid), so "
                    'kube-apiserver cannot be found. Run the Agent as root, or add it to the group named by gid=.'
                )
                return Finding(AgentCheck.UNKNOWN, reason)
            return None
        # A manifest but no kubelet either: the Agent does not see the host's processes, so judge the manifest.
        setting = ClientCaSetting(manifest.value, 'manifest', distribution, path)
        if not manifest.comparable:
            why = (
                f'the static pod manifest {path} runs it through a command this check does not read (or is one the '
                'kubelet would refuse to decode), and no apiserver or kubelet process is visible to the Agent (run it '
                "in the host's PID namespace)"
            )
            return judge(None, replace(setting, unjudgeable=why), None, None, now, self.settings.days_warning)
        finding = self._judge(None, setting, host_root, host_root, now, None)
        note = (
            f' Judged from the static pod manifest {path}: no apiserver or kubelet process is visible to the Agent '
            "(run it in the host's PID namespace to judge the running apiserver)."
        )
        return replace(finding, reason=finding.reason + note)

    def _bundle(self, key: str, data: bytes) -> CaBundle:
        cached = self._bundles.get(key)
        if cached is not None and cached[0] == data:
            return cached[1]
        if len(self._bundles) >= 8:  # one entry per apiserver and file: drop those of processes long gone
            self._bundles.clear()
        bundle = ca_bundle_from_pem(data)
        self._bundles[key] = (data, bundle)
        return bundle

    # -- the wire (listeners.py, wire.py, wire_verdict.py) -----------------------------------------------------------

    def _with_wire(self, procfs: str, apiservers: Sequence[ApiserverProcess], findings: list[Finding]) -> list[Finding]:
        """The findings as the running apiservers' TLS handshakes confirm or contradict them, probed every
        `wire_probe_interval` seconds (and at once for an apiserver not probed yet); the verified gauge."""
        if not self.settings.wire_probe:
            return findings
        monotonic = self._monotonic()
        due = monotonic >= self._wire_next
        if due:
            self._wire_next = monotonic + self.settings.wire_probe_interval
        known, combined, verified = {}, [], []
        for process, finding in zip(apiservers, findings, strict=True):
            key = (process.pid, process.start_ticks)
            subjects = self._file_subjects(procfs, process, finding)
            last = self._wire.get(key)
            if due or last is None:
                before = last[2] if last else frozenset()
                if last and last[0].verifiable:
                    before = missing_subjects(last[0], last[1])
                result = probe_apiserver(procfs, process, tls13=bool(last) and last[0].tls_version == 'TLSv1.3')
                last = (result, subjects, before)
                if not result.verifiable:
                    self.warning('%s: not verified on the wire: %s', process.label, result.explanation)
            known[key] = last
            result, _, before = last
            combined.append(with_wire(finding, result, subjects, before))
            verified.append((wire_verified(result, subjects, before), result.outcome))
        self._wire = known
        value, outcome = min(verified, key=lambda v: {WIRE_YES: 2, WIRE_NOT_VERIFIABLE: 1}.get(v[0], 0))
        tags = [*self.tags, f'wire_verified:{WIRE_TAG_VALUES[value]}', f'wire_result:{outcome}']
        self.gauge(self.METRIC_WIRE, value, tags=tags)
        return combined

    def _file_subjects(self, procfs: str, process: ApiserverProcess, finding: Finding) -> tuple[bytes, ...] | None:
        """The subjects of the certificates in the CA file just judged for `process`, None when it was not read."""
        cached = self._bundles.get(f'{procfs}/{process.pid}/root:{finding.ca_file}')
        if finding.bundle is None or cached is None:
            return None
        data = cached[0]
        known = self._wire_subjects.get(finding.ca_file)
        if known is None or known[0] != data:
            if len(self._wire_subjects) >= 8:
                self._wire_subjects.clear()
            known = self._wire_subjects[finding.ca_file] = (data, pem_certificate_subjects(data))
        return known[1]

    # -- reporting -------------------------------------------------------------------------------------------------

    def _report(self, findings: Sequence[Finding], now: float) -> None:
        verdict = node_verdict(findings)
        tags = self._verdict_tags(verdict)
        text = message(verdict, len(findings) - 1) if verdict.status != AgentCheck.OK else None
        self.service_check(self.SERVICE_CHECK, verdict.status, tags=tags, message=self._message(text))
        if verdict.compliant is not None:
            self.gauge(self.METRIC_COMPLIANT, 1 if verdict.compliant else 0, tags=tags)
        seen_files = set()
        for finding in findings:
            if finding.bundle is None or finding.ca_file in seen_files:
                continue
            seen_files.add(finding.ca_file)
            file_tags = [*self._verdict_tags(finding), f'client_ca_file:{agent_text(finding.ca_file)}']
            self.gauge(self.METRIC_CERTIFICATES, len(finding.bundle.certificates), tags=file_tags)
            if finding.days_left is not None:
                self.gauge(self.METRIC_DAYS_LEFT, finding.days_left, tags=file_tags)
        self._announce(verdict, now)
        if self.settings.findings_logs:
            self._send_finding(verdict, now)

    def _verdict_tags(self, finding: Finding) -> list[str]:
        return [*self.tags, f'kube_distribution:{finding.distribution}', f'verdict_source:{finding.source}']

    def _message(self, text: str | None) -> str | None:
        if text is None:
            return None
        text = agent_text(self.sanitize(text))
        return text if len(text) <= self.MESSAGE_LIMIT else text[: self.MESSAGE_LIMIT - 1] + '…'
