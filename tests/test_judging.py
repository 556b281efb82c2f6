"""Pure parts: which process is the apiserver, what a CA bundle holds, and the verdict for one process."""

import time

import pytest

from datadog_checks.base import AgentCheck
from datadog_checks.cis_kubernetes.access import Access
from datadog_checks.cis_kubernetes.ca_bundle import ca_bundle_from_pem
from datadog_checks.cis_kubernetes.distributions.setting import ClientCaSetting
from datadog_checks.cis_kubernetes.files_in_root import CaFileContent
from datadog_checks.cis_kubernetes.judging import Finding, against_manifest, judge, node_verdict
from datadog_checks.cis_kubernetes.processes import ApiserverProcess, identify
from datadog_checks.cis_kubernetes.procfs import split_cmdline
from datadog_checks.cis_kubernetes.reporting import compliance_status
from devtools import certs

PROCESS = ApiserverProcess(pid=42, start_ticks=0, name='kube-apiserver', args=())


# -- identity ---------------------------------------------------------------------------------------------------


def apiserver_arguments(comm, argv):
    identity = identify(comm, argv)
    return identity[1] if identity and identity[0] == 'kube-apiserver' else None


def test_kube_apiserver_is_identified_by_name_and_program():
    assert apiserver_arguments('kube-apiserver', ['/usr/local/bin/kube-apiserver', '--v=2']) == ('--v=2',)


def test_a_program_sharing_the_apiservers_prefix_is_not_the_apiserver():
    # kops's kube-apiserver-healthcheck sidecar (pkg/model/components/kubeapiserver, kops >= 1.17) shows comm
    # `kube-apiserver-` (cut at 15): the prefix rule that once matched it judged it and failed every kops node.
    argv = ['/usr/bin/kube-apiserver-healthcheck', '--ca-cert=/secrets/ca.crt', '--client-cert=/secrets/client.crt']
    assert identify('kube-apiserver-', argv) is None
    assert identify('kube-apiserver-', ['/opt/kube-apiserver-custom', '--client-ca-file=/x']) is None


@pytest.mark.parametrize('subcommand', ['apiserver', 'kube-apiserver'])
def test_hyperkube_subcommand_is_the_apiserver(subcommand):
    assert apiserver_arguments('hyperkube', ['/hyperkube', subcommand, '--x']) == ('--x',)


def test_hyperkube_other_subcommands_are_not():
    assert identify('hyperkube', ['/hyperkube', 'kubelet', '--x']) is None


@pytest.mark.parametrize(
    'comm, argv, expected',
    [
        ('k3s', ['/usr/local/bin/k3s', 'server', '--data-dir=/d'], ('k3s', ('--data-dir=/d',), False)),
        ('k3s', ['/usr/local/bin/k3s server', '', '', ''], ('k3s', (), True)),
        (
            'kubelite',
            ['/snap/microk8s/1/kubelite', '--apiserver-args-file=/a'],
            ('microk8s', ('--apiserver-args-file=/a',), False),
        ),
        ('microshift', ['microshift', 'run'], ('microshift', (), False)),
        ('openshift', ['openshift', 'start', 'master', 'api', '--config=/c'], ('openshift-3', ('--config=/c',), False)),
        ('openshift', ['openshift', 'start', 'master', '--config=/c'], ('openshift-3', ('--config=/c',), False)),
    ],
)
def test_embedding_programs_are_identified_with_their_kind(comm, argv, expected):
    assert identify(comm, argv) == expected


@pytest.mark.parametrize(
    'comm, argv',
    [
        ('k3s', ['/usr/local/bin/k3s', 'agent', '--server=https://x']),
        ('k3s', ['/usr/local/bin/k3s', 'kubectl', 'get', 'pods']),
        ('openshift', ['openshift', 'start', 'master', 'controllers', '--config=/c']),
        ('openshift', ['openshift', 'start', 'node']),
        ('microshift', ['microshift', 'version']),
        ('rke2', ['rke2', 'server']),
        ('k0s', ['k0s', 'controller', '--config=/etc/k0s/k0s.yaml']),
    ],
)
def test_supervisors_agents_and_other_subcommands_are_not_apiservers(comm, argv):
    assert identify(comm, argv) is None


@pytest.mark.parametrize(
    'comm, argv',
    [
        ('go-runner', ['/go-runner', '--log-file=/var/log/x', '/usr/local/bin/kube-apiserver', '--client-ca-file=/x']),
        ('watch-terminat', ['watch-termination', '--', 'kube-apiserver', '--client-ca-file=/x']),
        ('sh', ['sh', '-c', 'kube-apiserver --client-ca-file=/x']),
        ('kube-controller', ['kube-controller-manager', '--client-ca-file=/x']),
        ('kube-apiserver', ['/bin/sh', '/usr/local/bin/kube-apiserver', '--client-ca-file=/x']),
        ('kube-apiserver', []),
    ],
)
def test_wrappers_and_other_programs_are_not_the_apiserver(comm, argv):
    assert apiserver_arguments(comm, argv) is None


def test_cmdline_keeps_empty_arguments_and_spaces():
    assert split_cmdline(b'kube-apiserver\0--client-ca-file\0\0--a=b c\0') == [
        'kube-apiserver',
        '--client-ca-file',
        '',
        '--a=b c',
    ]
    assert split_cmdline(b'') == []


# -- the bundle -------------------------------------------------------------------------------------------------


def test_bundle_holds_every_certificate_with_text_between():
    data = b'intro text\n' + certs.pem(certs.certificate('a')) + b'\ncomment\n' + certs.pem(certs.certificate('b'))
    bundle = ca_bundle_from_pem(data)
    assert [c.subject for c in bundle.certificates] == ['CN=a', 'CN=b']
    assert bundle.unparseable == 0


def test_non_certificate_blocks_are_ignored():
    bundle = ca_bundle_from_pem(certs.private_key_pem())
    assert bundle.certificates == ()


def test_a_corrupt_certificate_block_is_counted():
    bad = b'-----BEGIN CERTIFICATE-----\nTUlJQm9uZQ==\n-----END CERTIFICATE-----\n'
    assert ca_bundle_from_pem(bad + certs.valid_ca()).unparseable == 1


def test_der_is_not_pem():
    assert ca_bundle_from_pem(certs.der(certs.certificate())).certificates == ()


# -- the verdict ------------------------------------------------------------------------------------------------


def verdict(
    data: bytes | None = None, *, ca_file='/pki/ca.crt', content=None, days_warning=30, now: float | None = None
) -> Finding:
    if content is None and data is not None:
        content = CaFileContent(data)
    bundle = ca_bundle_from_pem(content.data) if content is not None and content.data is not None else None
    setting = ClientCaSetting(ca_file, 'process', 'kubernetes')
    return judge(PROCESS, setting, content, bundle, time.time() if now is None else now, days_warning)


def test_valid_ca_bundle_passes():
    finding = verdict(certs.valid_ca(400))
    assert (finding.status, finding.compliant) == (AgentCheck.OK, True)
    assert finding.reason.startswith('PASS')
    assert 399 < finding.days_left <= 400


def test_ca_expiring_within_days_warning_warns_but_passes():
    finding = verdict(certs.valid_ca(10), days_warning=30)
    assert (finding.status, finding.compliant) == (AgentCheck.WARNING, True)
    assert 'expires in' in finding.reason


def test_days_warning_zero_never_warns_on_expiry():
    assert verdict(certs.valid_ca(10), days_warning=0).status == AgentCheck.OK


def test_absent_flag_fails():
    finding = verdict(ca_file=None)
    assert (finding.status, finding.compliant) == (AgentCheck.CRITICAL, False)


def test_empty_value_fails():
    assert verdict(ca_file='').status == AgentCheck.CRITICAL


@pytest.mark.parametrize('problem', ['missing', 'not_regular'])
def test_missing_or_irregular_file_fails(problem):
    finding = verdict(content=CaFileContent(None, problem, 'does not exist'))
    assert (finding.status, finding.compliant) == (AgentCheck.CRITICAL, False)


def test_unreadable_to_the_agent_warns_how_to_grant_access():
    finding = verdict(content=CaFileContent(None, 'permission', 'permission denied to the Agent'))
    # The flag is verified, the file is not: a WARNING that claims no compliance either way.
    assert (finding.status, finding.compliant, finding.verified) == (AgentCheck.WARNING, None, False)
    assert finding.reason.startswith('WARNING: not verified')
    assert 'root' in finding.fix and 'not verified' in finding.reason


def test_unexpected_read_problem_is_unknown():
    finding = verdict(content=CaFileContent(None, 'too_large', 'is too large'))
    assert (finding.status, finding.compliant) == (AgentCheck.UNKNOWN, None)


@pytest.mark.parametrize(
    'data',
    [
        pytest.param(b'', id='empty'),
        pytest.param(b'not a certificate', id='garbage'),
        pytest.param(certs.private_key_pem(), id='private key'),
        pytest.param(certs.der(certs.certificate()), id='der'),
        pytest.param(certs.pem(certs.certificate(is_ca=False)), id='leaf CA:FALSE'),
        pytest.param(certs.pem(certs.certificate(is_ca=None)), id='no basicConstraints'),
        pytest.param(certs.pem(certs.certificate(days_valid=5, starts_in_days=-10)), id='expired'),
        pytest.param(certs.pem(certs.certificate(starts_in_days=2)), id='not yet valid'),
        pytest.param(
            certs.pem(
                certs.certificate('old', days_valid=5, starts_in_days=-10), certs.certificate('new', starts_in_days=3)
            ),
            id='all expired or not yet valid',
        ),
        pytest.param(
            b'-----BEGIN CERTIFICATE-----\nTUlJQm9uZQ==\n-----END CERTIFICATE-----\n' + certs.valid_ca(),
            id='corrupt block beside a valid CA',
        ),
    ],
)
def test_files_that_cannot_authenticate_clients_fail(data):
    finding = verdict(data)
    assert (finding.status, finding.compliant) == (AgentCheck.CRITICAL, False), finding.reason


def test_expired_ca_beside_a_valid_one_warns():
    data = certs.pem(certs.certificate('old', days_valid=5, starts_in_days=-10), certs.certificate('new'))
    finding = verdict(data)
    assert finding.status == AgentCheck.WARNING
    assert finding.days_left < 0


def test_leaf_beside_a_ca_passes():
    assert verdict(certs.pem(certs.certificate('leaf', is_ca=False), certs.certificate('ca'))).status == AgentCheck.OK


def test_node_verdict_is_the_worst():
    ok = Finding(AgentCheck.OK, 'PASS')
    warning = Finding(AgentCheck.WARNING, 'WARNING')
    unknown = Finding(AgentCheck.UNKNOWN, 'UNKNOWN')
    critical = Finding(AgentCheck.CRITICAL, 'FAIL')
    assert node_verdict([ok, warning]) is warning
    assert node_verdict([ok, unknown, warning]) is unknown
    assert node_verdict([unknown, critical, ok]) is critical


def test_manifest_that_differs_turns_a_pass_into_a_warning_naming_both_values():
    finding = against_manifest(verdict(certs.valid_ca()), '/etc/kubernetes/manifests/kube-apiserver.yaml', '/new.crt')
    assert finding.status == AgentCheck.WARNING and finding.compliant
    assert finding.reason.startswith('WARNING') and "'/new.crt'" in finding.reason and "'/pki/ca.crt'" in finding.reason


def test_manifest_that_differs_leaves_a_failure_failing():
    finding = against_manifest(verdict(ca_file=''), '/etc/kubernetes/manifests/kube-apiserver.yaml', '/pki/ca.crt')
    assert finding.status == AgentCheck.CRITICAL and finding.reason.startswith('FAIL')


def test_manifest_that_agrees_changes_nothing():
    finding = verdict(certs.valid_ca())
    assert against_manifest(finding, '/etc/kubernetes/manifests/kube-apiserver.yaml', '/pki/ca.crt') is finding


# -- the file as the apiserver's own credentials reach it --------------------------------------------------------

DENIED = Access(False, 'runs as uid 65534, gid 65534 and cannot read /pki/ca.crt (root:root 0600)')
UNDECIDED = Access(None, 'its credentials could not be read')


def verdict_with(data: bytes, access: Access) -> Finding:
    setting = ClientCaSetting('/pki/ca.crt', 'process', 'kubernetes')
    return judge(PROCESS, setting, CaFileContent(data), ca_bundle_from_pem(data), time.time(), 30, access)


@pytest.mark.parametrize(
    'data', [certs.valid_ca(400), certs.valid_ca(5), certs.pem(certs.certificate('leaf', is_ca=False))]
)
def test_a_file_the_apiserver_cannot_read_fails_whatever_it_holds(data):
    finding = verdict_with(data, DENIED)
    assert (finding.status, finding.compliant) == (AgentCheck.CRITICAL, False)
    assert finding.reason.startswith('FAIL: kube-apiserver (pid 42) runs as uid 65534, gid 65534 and cannot read')
    assert 'cannot load its client CA file' in finding.reason


def test_a_file_the_apiserver_may_read_is_judged_on_its_content():
    assert verdict_with(certs.valid_ca(400), Access(True)) == verdict(certs.valid_ca(400))


def test_undecided_access_turns_a_pass_into_not_verified_keeping_what_was_read():
    finding = verdict_with(certs.valid_ca(400), UNDECIDED)
    assert (finding.status, finding.compliant, finding.verified) == (AgentCheck.WARNING, None, False)
    assert finding.reason.startswith('WARNING: not verified') and 'credentials could not be read' in finding.reason
    assert finding.bundle is not None and 399 < finding.days_left <= 400
    assert compliance_status(finding) == 'not_verified'


def test_undecided_access_leaves_a_failing_file_failing():
    finding = verdict_with(certs.pem(certs.certificate('leaf', is_ca=False)), UNDECIDED)
    assert (finding.status, finding.compliant) == (AgentCheck.CRITICAL, False)


def test_a_not_verified_finding_wins_over_a_verified_one_of_the_same_status():
    expiring = verdict(certs.valid_ca(5))
    unverified = verdict(content=CaFileContent(None, 'permission', 'permission denied to the Agent'))
    assert expiring.status == unverified.status == AgentCheck.WARNING
    assert node_verdict([expiring, unverified]) is unverified
    assert node_verdict([unverified, expiring]) is unverified


def test_compliance_status_of_each_kind_of_finding():
    assert compliance_status(verdict(certs.valid_ca())) == 'passed'
    assert compliance_status(verdict(ca_file='')) == 'failed'
    assert compliance_status(verdict(content=CaFileContent(None, 'permission', 'denied'))) == 'not_verified'
    assert compliance_status(verdict(content=CaFileContent(None, 'too_large', 'is too large'))) is None


# -- what counts as a CA: Go's rule (proven against Go in tests/test_x509_oracle.py) ------------------------------


def test_version_1_self_signed_ca_passes():
    from cryptography import x509

    from tests.test_x509_oracle import NOW, P256, make, pem

    finding = verdict(pem(make(P256, ca=None, version=x509.Version.v1, days=365)), now=NOW)
    assert finding.status == AgentCheck.OK, finding.reason


def test_ca_whose_key_usage_lacks_key_cert_sign_fails_saying_why():
    from tests.test_x509_oracle import NOW, P256, make, pem

    finding = verdict(pem(make(P256, key_usage={'digital_signature': True})), now=NOW)
    assert finding.status == AgentCheck.CRITICAL
    assert 'CA:TRUE but keyUsage lacks keyCertSign' in finding.reason


def test_version_3_without_basic_constraints_fails_saying_why():
    finding = verdict(certs.pem(certs.certificate('old-leaf', is_ca=None)))
    assert finding.status == AgentCheck.CRITICAL
    assert 'CN=old-leaf has version 3 without basicConstraints CA:TRUE' in finding.reason


def test_ca_for_server_auth_only_cannot_authenticate_clients():
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from tests.test_x509_oracle import NOW, P256, make, pem

    finding = verdict(pem(make(P256, eku=[ExtendedKeyUsageOID.SERVER_AUTH])), now=NOW)
    assert finding.status == AgentCheck.CRITICAL
    assert 'extendedKeyUsage without clientAuth' in finding.reason


@pytest.mark.parametrize(
    'data',
    [
        pytest.param(b'\xef\xbb\xbf' + certs.valid_ca(), id='byte-order mark before the only block'),
        pytest.param(certs.valid_ca().rstrip(b'\n') + certs.valid_ca(), id='two files joined without a newline'),
        pytest.param(b'  ' + certs.valid_ca(), id='indented BEGIN line'),
    ],
)
def test_files_go_does_not_load_fail(data):
    finding = verdict(data)
    assert finding.status == AgentCheck.CRITICAL
    assert 'no PEM certificate Go reads' in finding.reason


def test_a_certificate_go_refuses_fails_naming_the_refusal():
    from tests.test_x509_oracle import GO_REFUSES, NOW, pem

    der, _ = GO_REFUSES['negative serial (1.23)']
    finding = verdict(pem(der), now=NOW)
    assert finding.status == AgentCheck.CRITICAL
    assert 'do not parse in Go (x509: negative serial number)' in finding.reason


def test_ampersand_in_a_printable_string_is_read_as_go_reads_it():
    from tests.test_x509_oracle import NOW, V1_BASE, name_with, pem, with_field

    der = with_field(V1_BASE, 4, name_with(0x13, b'Smith & Co *'))  # cryptography cannot write this name
    finding = verdict(pem(der), now=NOW)
    assert finding.compliant, finding.reason  # it expires within days_warning: a WARNING that passes
    assert 'CN=Smith & Co *' in [c.subject for c in finding.bundle.certificates]


def test_a_file_whose_only_block_go_s_pem_reader_skips_fails():
    data = b'-----BEGIN X-----\nk: v\n-----END Y: z-----\n' + certs.valid_ca()  # proven in test_x509_oracle
    finding = verdict(data)
    assert finding.status == AgentCheck.CRITICAL
    assert 'holds no PEM certificate Go reads' in finding.reason
