"""Judging (pure): the verdict for one apiserver from its effective --client-ca-file and what the file holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from .access import Access
from .ca_bundle import CaBundle
from .control import ca_rotation_fix, flag_fix
from .distributions.setting import ClientCaSetting
from .files_in_root import CaFileContent
from .processes import ApiserverProcess

# The Agent's service check statuses (datadog_checks.base.constants.ServiceCheck): judging needs no AgentCheck.
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
SECONDS_PER_DAY = 86400.0
# Worst first when several apiserver processes are judged on one node.
STATUS_SEVERITY = {CRITICAL: 3, UNKNOWN: 2, WARNING: 1, OK: 0}


# A finding's status decides compliance: WARNING still passes the control, UNKNOWN is not judged; nor is a finding
# whose file the Agent could not see (`verified` False: the flag is set, the file is unknown).
COMPLIANT_BY_STATUS = {OK: True, WARNING: True, CRITICAL: False}


@dataclass(frozen=True)
class Finding:
    """The verdict for one apiserver."""

    status: int
    reason: str  # one line, leads with the verdict
    process: ApiserverProcess | None = None
    ca_file: str | None = None
    bundle: CaBundle | None = None
    days_left: float | None = None
    distribution: str = 'kubernetes'
    source: str = 'process'
    verified: bool = True  # False: the flag is set but the file (or the apiserver's access to it) was not verified
    fix: str = ''  # what resolves this finding's own problem ('' when there is nothing to fix)

    @property
    def compliant(self) -> bool | None:
        return COMPLIANT_BY_STATUS.get(self.status) if self.verified else None


def judge(
    process: ApiserverProcess | None,
    setting: ClientCaSetting,
    content: CaFileContent | None,
    bundle: CaBundle | None,
    now: float,
    days_warning: int,
    access: Access | None = None,
) -> Finding:
    """The verdict for one apiserver given its effective --client-ca-file, what the file holds and whether the
    apiserver's own credentials reach it (`access`; None when there is no process to ask)."""
    finding = _judge(process, setting, content, bundle, now, days_warning)
    if access is not None and content is not None and content.data is not None:
        finding = _as_the_apiserver_reads_it(finding, access, setting)
    return replace(finding, distribution=setting.distribution, source=setting.source)


def _as_the_apiserver_reads_it(finding: Finding, access: Access, setting: ClientCaSetting) -> Finding:
    """The verdict on a file the Agent read, given whether the apiserver's own credentials may read it."""
    who = finding.process.label if finding.process is not None else 'kube-apiserver'
    where = f' (in {setting.origin})' if setting.origin and setting.source != 'process' else ''
    if access.allowed is False:  # whatever it holds, the apiserver cannot load it
        reason = (
            f'FAIL: {who} {access.reason}: the apiserver cannot load its client CA file{where} and will not '
            'restart with it.'
        )
        fix = (
            f"Let the apiserver's user or group read {finding.ca_file} and search each directory above it: "
            'chown or chgrp it to them and chmod g+r (or o+r, a CA bundle is public), chmod +x the directories, or '
            'grant them with setfacl -m u:<uid>:r (and a mask that allows it).'
        )
        return Finding(CRITICAL, reason, finding.process, finding.ca_file, fix=fix)
    if access.allowed is None and finding.status != CRITICAL:  # a FAIL on the content stands either way
        verdict = finding.reason.split(': ', 1)[1]
        reason = (
            f'WARNING: not verified: whether {who} itself may read its client CA file was not verified '
            f'({access.reason}). What the Agent read: {verdict}'
        )
        return replace(finding, status=WARNING, reason=reason, verified=False, fix=AGENT_PRIVILEGES_FIX)
    return finding


AGENT_PRIVILEGES_FIX = (
    "Let the Agent verify: run it as root with the host's PID namespace (in Kubernetes: hostPID, and privileged or "
    'CAP_SYS_PTRACE with CAP_DAC_READ_SEARCH), so that it reads the file as the apiserver sees it.'
)
CA_BUNDLE = 'a PEM bundle of the CA certificates that sign client certificates'


def _judge(process, setting, content, bundle, now, days_warning) -> Finding:
    who = process.label if process is not None else 'kube-apiserver'
    ca_file = setting.value
    where = f' (in {setting.origin})' if setting.origin and setting.source != 'process' else ''
    if setting.unjudgeable:
        return Finding(UNKNOWN, f'UNKNOWN: {who}: {setting.unjudgeable}.', process, ca_file)
    if ca_file is None:
        reason = f'FAIL: {who} runs without --client-ca-file{where}: client certificate authentication is off.'
        return Finding(CRITICAL, reason, process, fix=flag_fix(setting.distribution))
    if ca_file == '':
        reason = f'FAIL: {who} has an empty --client-ca-file{where}: client certificate authentication is off.'
        return Finding(CRITICAL, reason, process, ca_file, fix=flag_fix(setting.distribution))
    the_file = f'the client CA file {ca_file} of {who}{where}'
    if content is None or content.data is None:
        problem, detail = (content.problem, content.detail) if content else ('error', 'was not read')
        if problem in ('missing', 'not_regular'):
            reason = f'FAIL: {the_file} {detail}; the apiserver cannot load it and will not restart.'
            fix = (
                f'Restore {ca_file} as {CA_BUNDLE} (from a backup or another control-plane node), or point '
                '--client-ca-file at the file that holds that bundle, before the apiserver restarts.'
            )
            return Finding(CRITICAL, reason, process, ca_file, fix=fix)
        if problem == 'permission':
            reason = (
                f'WARNING: not verified: {who} sets --client-ca-file to {ca_file}{where} (verified), but the Agent '
                f'cannot read the file ({detail}), so whether it exists and holds a valid CA certificate was not '
                'verified.'
            )
            return Finding(WARNING, reason, process, ca_file, verified=False, fix=AGENT_PRIVILEGES_FIX)
        return Finding(UNKNOWN, f'UNKNOWN: {the_file} could not be checked: {detail}.', process, ca_file)
    assert bundle is not None
    cas = bundle.ca_certificates
    days_left = round((min(c.not_after for c in cas) - now) / SECONDS_PER_DAY, 2) if cas else None
    valid = [c for c in cas if c.not_before <= now <= c.not_after]
    summary = f'{len(cas)} CA certificate(s), {len(valid)} valid now'
    fix = ''
    if bundle.unparseable:
        status, reason = (
            CRITICAL,
            f'FAIL: {the_file} holds {bundle.unparseable} certificate block(s) that do not parse in Go '
            f'({bundle.first_error}); the apiserver will not restart with it.',
        )
        fix = (
            f'Remove or replace the certificate block(s) Go refuses: {ca_file} must hold only certificates that '
            'parse (re-export a damaged one from its source, or take the bundle from another control-plane node).'
        )
    elif not bundle.certificates:
        status, reason = (
            CRITICAL,
            f'FAIL: {the_file} holds no PEM certificate Go reads; the apiserver will not restart with it.',
        )
        fix = (
            f'Write {ca_file} as {CA_BUNDLE}: each "-----BEGIN CERTIFICATE-----" at the start of a line, no '
            'byte-order mark, files joined with a newline between them; convert DER with '
            '`openssl x509 -inform DER -in <file> -out <file>.pem`.'
        )
    elif not cas:
        status, reason = (
            CRITICAL,
            f'FAIL: {the_file} holds {len(bundle.certificates)} certificate(s), none of them a CA that can sign '
            f'client certificates: {why_not_signers(bundle.certificates)}.',
        )
        fix = (
            f'Put the CA certificate that signs your client certificates in {ca_file} (basicConstraints CA:TRUE, '
            'keyUsage with keyCertSign, extendedKeyUsage absent or with clientAuth); a server or client '
            'certificate cannot stand in for it.'
        )
    elif not valid:
        status, reason = (
            CRITICAL,
            f'FAIL: every CA certificate in {the_file} is expired or not yet valid; no client certificate can be '
            'verified.',
        )
        fix = ca_rotation_fix(setting.distribution)
    elif days_left < 0:
        status, reason = WARNING, f'WARNING: {the_file} holds an expired CA certificate ({summary}).'
        fix = f'Remove the expired CA certificate from {ca_file}; the valid one(s) keep authenticating clients.'
    elif days_left <= days_warning:
        status, reason = (
            WARNING,
            f'WARNING: a CA certificate expires in {days_left:.1f} days, in {the_file} ({summary}).',
        )
        fix = ca_rotation_fix(setting.distribution)
    else:
        status, reason = OK, f'PASS: {who} authenticates clients against {ca_file} ({summary}).'
    return Finding(status, reason, process, ca_file, bundle, days_left, fix=fix)


def why_not_signers(certificates, limit: int = 3) -> str:
    """Why each certificate cannot sign client certificates, for the first few."""
    reasons = [f'{cert.subject} has {cert.signing_problem}' for cert in certificates[:limit] if cert.signing_problem]
    more = len(certificates) - limit
    return '; '.join(reasons) + (f'; and {more} more' if more > 0 else '')


def against_manifest(finding: Finding, manifest: str, manifest_value: str | None) -> Finding:
    """The finding for a running apiserver, at least a WARNING when its static pod manifest now says otherwise."""
    if manifest_value == finding.ca_file:
        return finding
    status = max(finding.status, WARNING, key=STATUS_SEVERITY.get)
    note = (
        f' The static pod manifest {manifest} sets --client-ca-file to {manifest_value!r} but the running apiserver '
        f'uses {finding.ca_file!r}: the kubelet has not restarted it with the manifest (the running process was '
        'judged).'
    )
    if status == finding.status:
        return replace(finding, reason=finding.reason + note)
    fix = (
        f'Let the kubelet restart the apiserver from {manifest} (it does when the manifest changes), or set the '
        "manifest's --client-ca-file back to the running value if the manifest is what is wrong."
    )
    reason = 'WARNING: ' + finding.reason.split(': ', 1)[1]
    return replace(finding, status=status, reason=reason + note, fix=fix)


def node_verdict(findings: Sequence[Finding]) -> Finding:
    """The worst finding over all apiserver processes of the node (of equal statuses, one not verified)."""
    return max(findings, key=lambda f: (STATUS_SEVERITY[f.status], not f.verified))
