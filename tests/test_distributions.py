"""Every distribution gets its true verdict: a real process shaped as that distribution starts it (name, argv, a
rewritten title like k3s's), its files in the process's own root, passing and failing variants both."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
import yaml

from datadog_checks.base import AgentCheck
from datadog_checks.cis_kubernetes.distributions.client_ca import detect_distribution
from datadog_checks.cis_kubernetes.distributions.k3s import k3s_apiserver_arguments
from datadog_checks.cis_kubernetes.distributions.manifests import apiserver_arguments
from datadog_checks.cis_kubernetes.flags import effective_flags
from datadog_checks.cis_kubernetes.processes import ApiserverProcess
from devtools import certs
from tests.conftest import needs_separate_root, needs_standins, write

SC = 'cis_kubernetes.apiserver.client_ca_file'
VALID = certs.valid_ca()
BROKEN = b'-----BEGIN CERTIFICATE-----\nTUlJQm9uZQ==\n-----END CERTIFICATE-----\n'
COMMON = ['--advertise-address=10.0.0.10', '--secure-port=6443', '--authorization-mode=Node,RBAC']


@dataclass
class Node:
    """One apiserver as a distribution runs it: its program, argv, environment and files in its own root."""

    program: str
    argv: list[str]
    files: dict[str, bytes]
    distribution: str
    source: str
    remediation_words: str
    env: dict[str, str] | None = None
    others: list[tuple[str, list[str]]] = field(default_factory=list)  # supervisors and wrappers beside it


def apiserver(ca_path: str, *extra: str, program='kube-apiserver', argv0='/usr/local/bin/kube-apiserver') -> list:
    return [argv0, *COMMON, f'--client-ca-file={ca_path}', *extra]


def own_process(name, ca_path, words, serving_file='apiserver.crt', **kwargs) -> tuple[Node, Node]:
    """A passing node (a valid CA at the path) and a failing one (the same flag, then emptied), both with the
    distribution's serving certificate beside the CA, as it lays out its files."""
    serving = '--tls-cert-file=' + os.path.join(os.path.dirname(ca_path), serving_file)
    passing = Node('kube-apiserver', apiserver(ca_path, serving), {ca_path: VALID}, name, 'process', words, **kwargs)
    failing = Node(
        'kube-apiserver',
        apiserver(ca_path, serving, '--client-ca-file='),
        {ca_path: VALID},
        name,
        'process',
        words,
        **kwargs,
    )
    return passing, failing


K3S_TITLE = ['/usr/local/bin/k3s server', '', '', '', '', '', '', '']
K3S_CA = '/var/lib/rancher/k3s/server/tls/client-ca.crt'
MICROK8S_ENV = {'SNAP': '/snap/microk8s/6089', 'SNAP_DATA': '/var/snap/microk8s/6089', 'PATH': '/usr/bin:/bin'}
MICROK8S_ARGV = ['/snap/microk8s/6089/kubelite', '--apiserver-args-file=/var/snap/microk8s/6089/args/kube-apiserver']
OPENSHIFT_CONFIG = '/etc/kubernetes/static-pod-resources/configmaps/config/config.yaml'
OPENSHIFT_CA = '/etc/kubernetes/static-pod-certs/configmaps/client-ca/ca-bundle.crt'


def openshift_config(client_ca_args) -> bytes:
    config = {
        'apiVersion': 'kubecontrolplane.config.openshift.io/v1',
        'kind': 'KubeAPIServerConfig',
        'servingInfo': {'clientCA': '/etc/kubernetes/static-pod-certs/configmaps/other/ca.crt'},
        'apiServerArguments': {'client-ca-file': client_ca_args, 'v': ['2']},
    }
    return yaml.safe_dump(config).encode()


CASES = {
    'kubeadm': own_process('kubeadm', '/etc/kubernetes/pki/ca.crt', '/etc/kubernetes/manifests/kube-apiserver.yaml'),
    'minikube': own_process('minikube', '/var/lib/minikube/certs/ca.crt', 'minikube start --extra-config'),
    'kubespray': own_process('kubespray', '/etc/kubernetes/ssl/ca.crt', 'kube_kubeadm_apiserver_extra_args'),
    'kops': own_process(
        'kops',
        '/srv/kubernetes/ca.crt',
        'kops edit cluster',
        others=[
            (
                'go-runner',
                [
                    '/go-runner',
                    '--log-file=/var/log/kube-apiserver.log',
                    '--also-stdout',
                    '/usr/local/bin/kube-apiserver',
                    '--client-ca-file=',
                ],
            )
        ],
    ),
    'rke1': own_process('rke1', '/etc/kubernetes/ssl/kube-ca.pem', 'rke up', serving_file='kube-apiserver.pem'),
    'rke2': own_process(
        'rke2',
        '/var/lib/rancher/rke2/server/tls/client-ca.crt',
        'systemctl restart rke2-server',
        others=[('rke2', ['/usr/local/bin/rke2', 'server'])],
    ),
    'talos': own_process('talos', '/system/secrets/kubernetes/kube-apiserver/ca.crt', 'talosctl patch machineconfig'),
    'k0s': own_process(
        'k0s',
        '/var/lib/k0s/pki/ca.crt',
        'spec.api.extraArgs',
        others=[('k0s', ['/usr/local/bin/k0s', 'controller', '--config=/etc/k0s/k0s.yaml'])],
    ),
    'docker-desktop': own_process('docker-desktop', '/run/config/pki/ca.crt', 'Reset Kubernetes Cluster'),
    'kubernetes-the-hard-way': own_process(
        'kubernetes-the-hard-way', '/var/lib/kubernetes/ca.pem', '/etc/systemd/system/kube-apiserver.service'
    ),
    'hyperkube': (
        Node(
            'hyperkube',
            ['/hyperkube', 'apiserver', '--client-ca-file=/etc/kubernetes/pki/ca.crt'],
            {'/etc/kubernetes/pki/ca.crt': VALID},
            'kubeadm',
            'process',
            '/etc/kubernetes/manifests',
        ),
        Node(
            'hyperkube',
            ['/hyperkube', 'kube-apiserver', '--client-ca-file=/etc/kubernetes/pki/ca.crt'],
            {'/etc/kubernetes/pki/ca.crt': BROKEN},
            'kubeadm',
            'process',
            'Remove or replace the certificate block(s) Go refuses',  # the fix for a broken file, not the flag's
        ),
    ),
    'k3s default': (
        Node('k3s', K3S_TITLE, {K3S_CA: VALID}, 'k3s', 'distribution_default', 'systemctl restart k3s'),
        Node('k3s', K3S_TITLE, {}, 'k3s', 'distribution_default', f'Restore {K3S_CA}'),
    ),
    'k3s config override': (
        Node(
            'k3s',
            K3S_TITLE,
            {
                '/etc/rancher/k3s/config.yaml': b'kube-apiserver-arg:\n  - client-ca-file=/opt/ca/clients.crt\n',
                '/opt/ca/clients.crt': VALID,
            },
            'k3s',
            'config_file',
            'config.yaml.d',
        ),
        Node(
            'k3s',
            K3S_TITLE,
            {
                K3S_CA: VALID,
                '/etc/rancher/k3s/config.yaml': b'write-kubeconfig-mode: "0644"\n',
                '/etc/rancher/k3s/config.yaml.d/90-hardening.yaml': b'kube-apiserver-arg+:\n  - client-ca-file=\n',
            },
            'k3s',
            'config_file',
            'config.yaml.d',
        ),
    ),
    'k3s data-dir and service command line': (
        Node(
            'k3s',
            K3S_TITLE,
            {'/etc/rancher/k3s/config.yaml': b'data-dir: /srv/k3s\n', '/srv/k3s/server/tls/client-ca.crt': VALID},
            'k3s',
            'distribution_default',
            'systemctl restart k3s',
        ),
        Node(
            'k3s',
            K3S_TITLE,
            {
                K3S_CA: VALID,
                '/etc/systemd/system/k3s.service': b'[Service]\nExecStart=/usr/local/bin/k3s \\\n    server \\\n'
                b"    '--cluster-init' \\\n    '--kube-apiserver-arg=client-ca-file=/etc/ca/missing.crt' \\\n",
            },
            'k3s',
            'config_file',
            'Restore /etc/ca/missing.crt',
        ),
    ),
    'k3s visible arguments': (
        Node(
            'k3s',
            ['/usr/local/bin/k3s', 'server', '--cluster-init', '--kube-apiserver-arg', 'v=2'],
            {K3S_CA: VALID},
            'k3s',
            'distribution_default',
            'systemctl restart k3s',
        ),
        Node(
            'k3s',
            ['/usr/local/bin/k3s', 'server', '--cluster-init', '--kube-apiserver-arg', 'client-ca-file='],
            {K3S_CA: VALID},
            'k3s',
            'process',
            'systemctl restart k3s',
        ),
    ),
    'microk8s': (
        Node(
            'kubelite',
            MICROK8S_ARGV,
            {
                '/var/snap/microk8s/6089/args/kube-apiserver': (
                    b'# arguments\n--client-ca-file=${SNAP_DATA}/certs/ca.crt\n--secure-port=16443\n'
                ),
                '/var/snap/microk8s/6089/certs/ca.crt': VALID,
            },
            'microk8s',
            'config_file',
            'microk8s stop && microk8s start',
            env=MICROK8S_ENV,
        ),
        Node(
            'kubelite',
            MICROK8S_ARGV,
            {
                '/var/snap/microk8s/6089/args/kube-apiserver': b'--secure-port=16443\n--client-ca-file=\n',
                '/var/snap/microk8s/6089/certs/ca.crt': VALID,
            },
            'microk8s',
            'config_file',
            'microk8s stop && microk8s start',
            env=MICROK8S_ENV,
        ),
    ),
    'openshift 4': (
        Node(
            'kube-apiserver',
            ['kube-apiserver', f'--openshift-config={OPENSHIFT_CONFIG}', '-v=2'],
            {OPENSHIFT_CONFIG: openshift_config([OPENSHIFT_CA]), OPENSHIFT_CA: VALID},
            'openshift',
            'config_file',
            'oc get kubeapiserver',
            others=[
                (
                    'watch-termination',
                    [
                        'watch-termination',
                        '--termination-touch-file=/var/log/x',
                        '--',
                        'hyperkube',
                        'kube-apiserver',
                        '--client-ca-file=',
                    ],
                )
            ],
        ),
        Node(
            'kube-apiserver',
            ['kube-apiserver', f'--openshift-config={OPENSHIFT_CONFIG}', '-v=2'],
            {OPENSHIFT_CONFIG: openshift_config([OPENSHIFT_CA, '']), OPENSHIFT_CA: VALID},
            'openshift',
            'config_file',
            'oc get kubeapiserver',
        ),
    ),
    'openshift 3.11': (
        Node(
            'openshift',
            ['openshift', 'start', 'master', 'api', '--config=/etc/origin/master/master-config.yaml'],
            {
                '/etc/origin/master/master-config.yaml': b'servingInfo:\n  clientCA: ca.crt\n',
                '/etc/origin/master/ca.crt': VALID,
            },
            'openshift-3',
            'config_file',
            'master-restart api',
        ),
        Node(
            'openshift',
            ['openshift', 'start', 'master', 'api', '--config=/etc/origin/master/master-config.yaml'],
            {'/etc/origin/master/master-config.yaml': b'servingInfo:\n  certFile: master.server.crt\n'},
            'openshift-3',
            'config_file',
            'master-restart api',
        ),
    ),
}


def start_node(node: Node, apiservers, root: str):
    for path, data in node.files.items():
        write(root + path, data)
    for program, argv in node.others:
        apiservers(argv, program=program, root=root)
    return apiservers(node.argv, program=node.program, root=root, env=node.env)


@needs_separate_root
@pytest.mark.parametrize('variant', ['passing', 'failing'])
@pytest.mark.parametrize('case', CASES)
def test_distribution_gets_its_true_verdict(case, variant, make_check, dd_run_check, aggregator, apiservers, workdir):
    node = CASES[case][variant == 'failing']
    start_node(node, apiservers, f'{workdir}/root')
    dd_run_check(make_check({'host_root': f'{workdir}/empty-host'}))
    (sc,) = aggregator.service_checks(SC)
    assert f'kube_distribution:{node.distribution}' in sc.tags
    assert f'verdict_source:{node.source}' in sc.tags
    assert [m.value for m in aggregator.metrics('cis_kubernetes.apiserver.processes')] == [1]
    if variant == 'passing':
        assert sc.status == AgentCheck.OK, sc.message
    else:
        assert sc.status == AgentCheck.CRITICAL, sc.message
        assert node.remediation_words in sc.message or node.remediation_words in aggregator.events[0]['msg_text']
    (event,) = aggregator.events
    assert f'kube_distribution:{node.distribution}' in event['tags']


@needs_separate_root
def test_microshift_is_reported_as_not_judgeable(make_check, dd_run_check, aggregator, apiservers, workdir):
    write(f'{workdir}/root/etc/microshift/config.yaml', b'dns:\n  baseDomain: example.com\n')
    apiservers(['microshift', 'run'], program='microshift', root=f'{workdir}/root')
    dd_run_check(make_check())
    (sc,) = aggregator.service_checks(SC)
    assert sc.status == AgentCheck.UNKNOWN
    assert 'cannot be judged from the node' in sc.message
    assert 'kube_distribution:microshift' in sc.tags
    assert aggregator.metrics('cis_kubernetes.control.compliant') == []


# -- nodes without a running apiserver --------------------------------------------------------------------------

MANIFEST = '/etc/kubernetes/manifests/kube-apiserver.yaml'


def manifest(*flags: str) -> bytes:
    pod = {
        'apiVersion': 'v1',
        'kind': 'Pod',
        'metadata': {'name': 'kube-apiserver', 'namespace': 'kube-system'},
        'spec': {'containers': [{'name': 'kube-apiserver', 'command': ['kube-apiserver', *COMMON, *flags]}]},
    }
    return yaml.safe_dump(pod).encode()


@needs_standins
def test_worker_node_with_a_kubelet_and_no_manifest_is_not_applicable(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    apiservers(['/usr/bin/kubelet', '--config=/var/lib/kubelet/config.yaml'], program='kubelet')
    os.makedirs(f'{workdir}/host/etc')
    dd_run_check(make_check({'host_root': f'{workdir}/host'}))
    assert aggregator.service_checks(SC) == []
    assert aggregator.events == []


@needs_standins
def test_manifest_present_and_kubelet_running_but_no_apiserver_is_unknown(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    write(f'{workdir}/host{MANIFEST}', manifest('--client-ca-file=/etc/kubernetes/pki/ca.crt'))
    apiservers(['/usr/bin/kubelet', '--config=/var/lib/kubelet/config.yaml'], program='kubelet')
    dd_run_check(make_check({'host_root': f'{workdir}/host'}))
    (sc,) = aggregator.service_checks(SC)
    assert sc.status == AgentCheck.UNKNOWN
    assert 'expected on this node' in sc.message and MANIFEST in sc.message


@needs_standins
def test_rke2_server_without_its_apiserver_is_unknown(make_check, dd_run_check, aggregator, apiservers, workdir):
    apiservers(['/usr/local/bin/rke2', 'server'], program='rke2')
    dd_run_check(make_check({'host_root': f'{workdir}/host'}))
    (sc,) = aggregator.service_checks(SC)
    assert sc.status == AgentCheck.UNKNOWN
    assert 'RKE2 server runs' in sc.message
    assert 'kube_distribution:rke2' in sc.tags


@pytest.mark.parametrize('variant', ['passing', 'failing'])
def test_manifest_is_judged_when_no_process_is_visible(variant, make_check, dd_run_check, aggregator, workdir):
    host = f'{workdir}/host'
    write(f'{host}/etc/kubernetes/pki/ca.crt', VALID)
    flag = '--client-ca-file=/etc/kubernetes/pki/ca.crt' if variant == 'passing' else '--anonymous-auth=false'
    write(f'{host}{MANIFEST}', manifest(flag))
    dd_run_check(make_check({'host_root': host}))
    (sc,) = aggregator.service_checks(SC)
    assert sc.status == (AgentCheck.OK if variant == 'passing' else AgentCheck.CRITICAL)
    assert 'verdict_source:manifest' in sc.tags and 'kube_distribution:kubeadm' in sc.tags
    (event,) = aggregator.events
    assert 'Judged from the static pod manifest' in event['msg_text']


@needs_standins
def test_manifest_that_differs_from_the_running_apiserver_warns_and_the_process_is_judged(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    ca = write(f'{workdir}/pki/ca.crt', VALID)
    write(f'{workdir}/host{MANIFEST}', manifest('--client-ca-file=/etc/kubernetes/pki/new-ca.crt'))
    apiservers(apiserver(ca, '--tls-cert-file=/etc/kubernetes/pki/apiserver.crt'))
    dd_run_check(make_check({'host_root': f'{workdir}/host'}))
    (sc,) = aggregator.service_checks(SC)
    assert sc.status == AgentCheck.WARNING
    assert 'has not restarted it' in sc.message and 'new-ca.crt' in sc.message


@needs_standins
def test_rke2_manifest_that_differs_from_the_running_apiserver_warns(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    ca = write(f'{workdir}/var/lib/rancher/rke2/server/tls/client-ca.crt', VALID)
    pod = {
        'apiVersion': 'v1',
        'kind': 'Pod',
        'spec': {
            'containers': [
                {'name': 'kube-apiserver', 'command': ['kube-apiserver'], 'args': [*COMMON, '--client-ca-file=']}
            ]
        },
    }
    write(f'{workdir}/host/var/lib/rancher/rke2/agent/pod-manifests/kube-apiserver.yaml', yaml.safe_dump(pod).encode())
    apiservers(apiserver(ca, '--tls-cert-file=/var/lib/rancher/rke2/server/tls/serving-kube-apiserver.crt'))
    dd_run_check(make_check({'host_root': f'{workdir}/host'}))
    (sc,) = aggregator.service_checks(SC)
    assert sc.status == AgentCheck.WARNING
    assert 'pod-manifests/kube-apiserver.yaml' in sc.message
    assert 'kube_distribution:rke2' in sc.tags


@needs_standins
def test_manifest_that_matches_the_running_apiserver_changes_nothing(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    ca = write(f'{workdir}/pki/ca.crt', VALID)
    write(f'{workdir}/host{MANIFEST}', manifest(f'--client-ca-file={ca}'))
    apiservers(apiserver(ca, '--tls-cert-file=/etc/kubernetes/pki/apiserver.crt'))
    dd_run_check(make_check({'host_root': f'{workdir}/host'}))
    (sc,) = aggregator.service_checks(SC)
    assert sc.status == AgentCheck.OK


# -- detection and tagging --------------------------------------------------------------------------------------


def test_kind_is_kubeadm_inside_a_node_container(tmp_path):
    flags = effective_flags(['--client-ca-file=/etc/kubernetes/pki/ca.crt'])
    process = ApiserverProcess(pid=1, start_ticks=0, name='kube-apiserver', args=(), flags=flags)
    assert detect_distribution(process, str(tmp_path)) == 'kubeadm'
    (tmp_path / 'kind').mkdir()
    assert detect_distribution(process, str(tmp_path)) == 'kind'


def test_k0s_is_known_by_its_controller_parent():
    process = ApiserverProcess(pid=1, start_ticks=0, name='kube-apiserver', args=(), flags={}, parent='k0s')
    assert detect_distribution(process, '/nonexistent') == 'k0s'


@needs_standins
def test_benchmark_version_adds_the_controls_number_in_that_version(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    ca = write(f'{workdir}/ca.crt', VALID)
    apiservers(apiserver(ca))
    dd_run_check(make_check({'benchmark_version': '1.23'}))
    (sc,) = aggregator.service_checks(SC)
    assert {'cis-kubernetes:1.2.31', 'cis_benchmark_version:1.23', 'cis_control:1.2.28'} <= set(sc.tags)


# -- wrapped commands in static pod manifests -------------------------------------------------------------------

CA_FLAG = '--client-ca-file=/etc/kubernetes/pki/ca.crt'


@pytest.mark.parametrize(
    'argv, arguments',
    [
        (['kube-apiserver', CA_FLAG], [CA_FLAG]),
        ([CA_FLAG, '--v=2'], [CA_FLAG, '--v=2']),  # only `args`: the image's entrypoint
        (['/hyperkube', 'kube-apiserver', CA_FLAG], [CA_FLAG]),
        # kube-log-runner (go-runner): Go flag-package options, then the command
        (
            [
                '/go-runner',
                '--log-file=/var/log/kube-apiserver.log',
                '--also-stdout',
                '/usr/local/bin/kube-apiserver',
                CA_FLAG,
            ],
            [CA_FLAG],
        ),
        (['/go-runner', '--log-file', '/var/log/a.log', '--', 'kube-apiserver', CA_FLAG], [CA_FLAG]),
        (['/go-runner', '-redirect-stderr=false', 'kube-apiserver', CA_FLAG], [CA_FLAG]),
        (['sh', '-c', f'exec /usr/local/bin/kube-apiserver {CA_FLAG} --v=2'], [CA_FLAG, '--v=2']),
        (['/bin/sh', '-ec', f"mkdir -p /var/log && exec kube-apiserver '{CA_FLAG}' >>/var/log/a.log 2>&1"], [CA_FLAG]),
        (['bash', '-c', f'kube-apiserver {CA_FLAG}; echo done'], [CA_FLAG]),
        (['sh', '-c', 'exec /go-runner --log-file=/x.log /usr/local/bin/kube-apiserver ' + CA_FLAG], [CA_FLAG]),
        (['sh', '-c', 'exec kube-apiserver --client-ca-file=$CA'], None),  # a variable: the shell decides
        (['sh', '-c', 'exec kube-apiserver "$@"', 'sh', CA_FLAG], None),
        (['sh', '-c', 'exec kube-apiserver "unbalanced'], None),
        (['sh', 'start-apiserver.sh'], None),  # a script file this check does not read
        (['/usr/local/bin/entrypoint', CA_FLAG], None),
        ([], None),
    ],
)
def test_apiserver_arguments_are_read_through_its_wrappers(argv, arguments):
    assert apiserver_arguments(argv) == arguments


def wrapped_manifest(command: list[str]) -> bytes:
    pod = {'apiVersion': 'v1', 'kind': 'Pod', 'spec': {'containers': [{'name': 'kube-apiserver', 'command': command}]}}
    return yaml.safe_dump(pod).encode()


@needs_standins
@pytest.mark.parametrize(
    'command',
    [
        ['sh', '-c', 'exec kube-apiserver --client-ca-file={ca} --v=2'],
        [
            '/go-runner',
            '--log-file=/var/log/kube-apiserver.log',
            '/usr/local/bin/kube-apiserver',
            '--client-ca-file={ca}',
        ],
        ['sh', '-c', 'exec kube-apiserver --client-ca-file=$CLIENT_CA'],  # not comparable: no drift claimed
    ],
)
def test_wrapped_manifest_command_gives_no_false_drift_warning(
    command, make_check, dd_run_check, aggregator, apiservers, workdir
):
    ca = write(f'{workdir}/pki/ca.crt', VALID)
    write(f'{workdir}/host{MANIFEST}', wrapped_manifest([word.replace('{ca}', ca) for word in command]))
    apiservers(apiserver(ca, '--tls-cert-file=/etc/kubernetes/pki/apiserver.crt'))
    dd_run_check(make_check({'host_root': f'{workdir}/host'}))
    (sc,) = aggregator.service_checks(SC)
    assert sc.status == AgentCheck.OK, sc.message


def test_manifest_that_cannot_be_read_through_its_wrapper_is_unknown_when_no_process_is_visible(
    make_check, dd_run_check, aggregator, workdir
):
    host = f'{workdir}/host'
    write(f'{host}/etc/kubernetes/pki/ca.crt', VALID)
    write(f'{host}{MANIFEST}', wrapped_manifest(['sh', '-c', 'exec kube-apiserver --client-ca-file=$CA']))
    dd_run_check(make_check({'host_root': host}))
    (sc,) = aggregator.service_checks(SC)
    assert sc.status == AgentCheck.UNKNOWN
    assert 'does not read' in sc.message


# -- k3s's own rules for kube-apiserver-arg (k3s pkg/daemons/config GetArgs, later pkg/util/args.go) ---------------

K3S_DEFAULT = {'client-ca-file': K3S_CA}


@pytest.mark.parametrize(
    'extra, expected',
    [
        ([], K3S_CA),
        (['client-ca-file=/a'], '/a'),  # replaces k3s's own value
        (['client-ca-file=/a', 'client-ca-file=/b'], '/b'),  # repeated entries all reach the apiserver: the last wins
        (['client-ca-file+=/a'], '/a'),  # appended after k3s's own value
        (['client-ca-file-=/a'], K3S_CA),  # put before k3s's own value, which then wins
        (['client-ca-file'], 'true'),  # a bare name is name=true
        (['--client-ca-file=/a'], '/a'),  # a leading -- is dropped
        (['client_ca_file=/a'], '/a'),  # another name for k3s, sorted after client-ca-file; kube-apiserver reads it
        (['client-ca-file='], ''),
    ],
)
def test_k3s_combines_kube_apiserver_arg_as_k3s_does(extra, expected):
    args = k3s_apiserver_arguments(K3S_DEFAULT, extra)
    assert args == sorted(args, key=lambda arg: arg.split('=', 1)[0])  # sorted by name, values of a name in order
    assert effective_flags(args).get('client-ca-file') == expected


@needs_separate_root
@pytest.mark.parametrize('where', ['config', 'command line'])
def test_k3s_server_with_disable_apiserver_sends_nothing(
    where, make_check, dd_run_check, aggregator, apiservers, workdir
):
    root = f'{workdir}/root'
    write(root + K3S_CA, b'')  # would FAIL if judged
    if where == 'config':
        write(root + '/etc/rancher/k3s/config.yaml', b'disable-apiserver: true\n')
        argv = K3S_TITLE
    else:
        argv = ['/usr/local/bin/k3s', 'server', '--disable-apiserver', '--cluster-init']
    apiservers(argv, program='k3s-server', exe='k3s', root=root)
    dd_run_check(make_check())
    assert not aggregator.service_checks(SC)
    aggregator.assert_metric('cis_kubernetes.apiserver.processes', value=0)


@needs_separate_root
def test_k3s_systemd_server_is_judged(make_check, dd_run_check, aggregator, apiservers, workdir):
    root = f'{workdir}/root'
    write(root + K3S_CA, VALID)
    apiservers(K3S_TITLE, program='k3s-server', exe='k3s', root=root)
    dd_run_check(make_check())
    assert [sc.status for sc in aggregator.service_checks(SC)] == [AgentCheck.OK]


@needs_standins
def test_microk8s_worker_kubelite_is_not_judged(make_check, dd_run_check, aggregator, apiservers):
    apiservers([*MICROK8S_ARGV, '--start-control-plane=false'], program='kubelite')
    dd_run_check(make_check())
    assert not aggregator.service_checks(SC)


@needs_standins
def test_stopped_apiserver_under_a_k0s_controller_is_unknown(make_check, dd_run_check, aggregator, apiservers):
    apiservers(['/usr/local/bin/k0s', 'controller', '--config=/etc/k0s/k0s.yaml'], program='k0s')
    dd_run_check(make_check())
    [sc] = aggregator.service_checks(SC)
    assert sc.status == AgentCheck.UNKNOWN and 'k0s controller' in sc.message


@needs_separate_root
@pytest.mark.parametrize('where', ['apiServerArguments', 'servingInfo.clientCA'])
def test_openshift_relative_paths_are_read_where_openshift_resolves_them(
    where, make_check, dd_run_check, aggregator, apiservers, workdir
):
    # apiServerArguments become flags: relative to the apiserver's working directory. servingInfo.clientCA is a file
    # reference that OpenShift resolves against the configuration file's directory (helpers.ResolvePaths).
    root, cwd, config_dir = f'{workdir}/root', '/var/log/kube-apiserver', '/etc/kubernetes/static-pod-resources'
    config = {'apiServerArguments': {'client-ca-file': ['ca.crt']}} if where == 'apiServerArguments' else {}
    config['servingInfo'] = {'clientCA': 'ca.crt'} if where != 'apiServerArguments' else {}
    good, bad = (cwd, config_dir) if where == 'apiServerArguments' else (config_dir, cwd)
    write(f'{root}{config_dir}/config.yaml', yaml.safe_dump(config).encode())
    write(f'{root}{good}/ca.crt', VALID)
    write(f'{root}{bad}/ca.crt', BROKEN)
    apiservers(['kube-apiserver', f'--openshift-config={config_dir}/config.yaml'], root=root, cwd=cwd)
    dd_run_check(make_check())
    assert [sc.status for sc in aggregator.service_checks(SC)] == [AgentCheck.OK]


@needs_separate_root
@pytest.mark.parametrize('config', ['config.yaml', 'config.yaml.d/50-rancher.yaml'])
def test_etcd_only_rke2_server_is_not_applicable(config, make_check, dd_run_check, aggregator, apiservers, workdir):
    # rke2 with disable-apiserver runs no kube-apiserver and removes its static pod (pkg/executor/staticpod/cleanup.go)
    root = f'{workdir}/root'
    write(f'{root}/etc/rancher/rke2/{config}', b'disable-apiserver: true\ndisable-scheduler: true\n')
    apiservers(['/usr/local/bin/rke2 server', '', '', '', ''], program='rke2', root=root)
    dd_run_check(make_check())
    assert not aggregator.service_checks(SC)


@needs_separate_root
def test_rke2_server_titled_server_without_its_apiserver_is_unknown(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    root = f'{workdir}/root'
    write(f'{root}/etc/rancher/rke2/config.yaml', b'write-kubeconfig-mode: "0644"\n')
    apiservers(['/usr/local/bin/rke2 server', '', '', '', ''], program='rke2', root=root)
    dd_run_check(make_check())
    [sc] = aggregator.service_checks(SC)
    assert sc.status == AgentCheck.UNKNOWN and 'RKE2 server' in sc.message


@needs_separate_root
def test_k3s_config_file_named_by_its_environment_is_read(make_check, dd_run_check, aggregator, apiservers, workdir):
    root = f'{workdir}/root'
    write(root + K3S_CA, VALID)
    write(root + '/srv/k3s.yaml', b'kube-apiserver-arg:\n  - client-ca-file=\n')
    env = {'K3S_CONFIG_FILE': '/srv/k3s.yaml', 'PATH': '/usr/bin:/bin'}
    apiservers(K3S_TITLE, program='k3s-server', exe='k3s', root=root, env=env)
    dd_run_check(make_check())
    assert [sc.status for sc in aggregator.service_checks(SC)] == [AgentCheck.CRITICAL]
