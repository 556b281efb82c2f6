"""Each finding says its own problem and its own fix, in the first 500 characters of the service check message (what
the Datadog API keeps), and no other finding's fix (issue 22: every message once ended with the flag's remediation)."""

from __future__ import annotations

import time

import pytest

from datadog_checks.cis_kubernetes.access import Access
from datadog_checks.cis_kubernetes.ca_bundle import ca_bundle_from_pem
from datadog_checks.cis_kubernetes.distributions.setting import ClientCaSetting
from datadog_checks.cis_kubernetes.files_in_root import CaFileContent
from datadog_checks.cis_kubernetes.judging import CRITICAL, OK, WARNING, against_manifest, judge
from datadog_checks.cis_kubernetes.processes import ApiserverProcess
from datadog_checks.cis_kubernetes.reporting import event_text, event_title, message
from datadog_checks.cis_kubernetes.wire import WireResult
from datadog_checks.cis_kubernetes.wire_names import pem_certificate_subjects
from datadog_checks.cis_kubernetes.wire_verdict import with_wire
from devtools import certs
from tests.test_x509_oracle import GO_REFUSES, pem

PROCESS = ApiserverProcess(pid=42, start_ticks=0, name='kube-apiserver', args=())
LIMIT = 500
# What begins each fix: a message may carry only its own
FIXES = {
    'flag': 'Edit the static pod manifest',
    'restore': 'Restore /pki/ca.crt',
    'unparseable': 'Remove or replace the certificate block(s) Go refuses',
    'pem': 'Write /pki/ca.crt as a PEM bundle',
    'signer': 'Put the CA certificate that signs your client certificates',
    'rotate': '`kubeadm certs check-expiration`',
    'remove_expired': 'Remove the expired CA certificate',
    'apiserver_read': "Let the apiserver's user or group read",
    'agent': 'Let the Agent verify',
    'no_request': 'Restart kube-apiserver with its configuration',
    'not_loaded': 'Restart kube-apiserver so that it loads',
    'manifest': 'Let the kubelet restart the apiserver from',
}


def judged(data=None, *, value='/pki/ca.crt', content=None, access=None, distribution='kubeadm'):
    if content is None and data is not None:
        content = CaFileContent(data)
    bundle = ca_bundle_from_pem(data) if data is not None else None
    setting = ClientCaSetting(value, 'process', distribution)
    return judge(PROCESS, setting, content, bundle, time.time(), 30, access)


def expired_ca():
    return certs.pem(certs.certificate('old-ca', days_valid=10, starts_in_days=-20))


def wire(outcome, names=()):
    return WireResult(outcome, names, '127.0.0.1:6443', tls_version='TLSv1.2')


def findings():
    valid = certs.valid_ca(400)
    subjects = pem_certificate_subjects(valid)
    not_loaded = with_wire(judged(valid), wire('advertised'), subjects, frozenset(subjects))
    return {
        'flag absent': (judged(value=None), 'runs without --client-ca-file', 'flag'),
        'flag empty': (judged(value=''), 'has an empty --client-ca-file', 'flag'),
        'file missing': (judged(content=CaFileContent(None, 'missing', 'does not exist')), 'does not exist', 'restore'),
        'not a regular file': (
            judged(content=CaFileContent(None, 'not_regular', 'is a directory')),
            'is a directory',
            'restore',
        ),
        'a certificate Go refuses': (
            judged(pem(GO_REFUSES['negative serial (1.23)'][0])),
            'do not parse in Go (x509: negative serial number)',
            'unparseable',
        ),
        'no PEM certificate': (judged(b'\xef\xbb\xbf' + valid), 'holds no PEM certificate Go reads', 'pem'),
        'no certificate that can sign': (
            judged(certs.pem(certs.certificate('leaf', is_ca=False))),
            'CN=leaf has basicConstraints CA:FALSE',
            'signer',
        ),
        'every CA expired': (judged(expired_ca()), 'every CA certificate in', 'rotate'),
        'one CA expired': (judged(expired_ca() + valid), 'holds an expired CA certificate', 'remove_expired'),
        'a CA expiring': (judged(certs.valid_ca(10)), 'expires in 10.0 days', 'rotate'),
        'the apiserver cannot read it': (
            judged(valid, access=Access(False, 'runs as uid 65534, gid 65534 and cannot read /pki/ca.crt')),
            'runs as uid 65534, gid 65534 and cannot read /pki/ca.crt',
            'apiserver_read',
        ),
        'the Agent cannot read it': (
            judged(content=CaFileContent(None, 'permission', 'permission denied')),
            'the Agent cannot read the file (permission denied)',
            'agent',
        ),
        'no CertificateRequest on the wire': (
            with_wire(judged(valid), wire('no_request'), subjects),
            'sends no TLS CertificateRequest',
            'no_request',
        ),
        'a CA not loaded by the running apiserver': (not_loaded, 'has not loaded the CA', 'not_loaded'),
        'the manifest says otherwise': (
            against_manifest(judged(valid), '/etc/kubernetes/manifests/kube-apiserver.yaml', '/other/ca.crt'),
            'sets --client-ca-file to',
            'manifest',
        ),
    }


FINDINGS = findings()


@pytest.mark.parametrize('kind', FINDINGS)
def test_each_finding_names_its_own_problem_and_fix_and_no_other(kind):
    finding, problem, fix = FINDINGS[kind]
    assert finding.status in (WARNING, CRITICAL), finding.reason
    text = message(finding)[:LIMIT]
    assert problem in text, text
    assert f'Fix: {FIXES[fix]}' in text, text
    for other, marker in FIXES.items():
        if other != fix:
            assert marker not in message(finding), (other, message(finding))
    assert f'**Fix:** {FIXES[fix]}' in event_text(finding)


def test_each_fix_is_tested_above():
    assert {fix for _, _, fix in FINDINGS.values()} == set(FIXES)


@pytest.mark.parametrize(
    ('distribution', 'command'),
    [('k3s', 'k3s certificate rotate-ca'), ('rke2', 'rke2 certificate rotate-ca'), ('microk8s', 'refresh-certs')],
)
def test_an_expiring_ca_is_renewed_with_the_distribution_s_own_command(distribution, command):
    finding = judged(certs.valid_ca(10), distribution=distribution)
    assert command in message(finding)[:LIMIT]


def test_an_expiring_ca_s_event_title_says_it_is_expiring_not_just_passed():
    finding = judged(certs.valid_ca(10))
    title = event_title(finding, 'passed', 'node-1')
    assert 'passed with a warning on node-1' in title and 'expires in 10.0 days' in title


def test_a_pass_says_no_fix():
    finding = judged(certs.valid_ca(400))
    assert finding.status == OK and finding.fix == ''
    assert 'Fix' not in event_text(finding)
