"""Which distribution started an apiserver, and where that distribution keeps its effective --client-ca-file."""

from __future__ import annotations

import os

from ..control import CONTROL
from ..processes import ApiserverProcess
from .k3s import k3s_setting
from .microk8s import microk8s_setting
from .openshift import openshift_setting
from .setting import ClientCaSetting

# Paths in kube-apiserver's flags that tell which distribution started it (the first match wins).
DISTRIBUTION_PATHS = (
    ('/var/lib/rancher/rke2/', 'rke2'),
    ('/var/lib/minikube/', 'minikube'),
    ('/srv/kubernetes/', 'kops'),
    ('/etc/kubernetes/ssl/kube-', 'rke1'),
    ('/etc/kubernetes/ssl/', 'kubespray'),
    ('/system/secrets/kubernetes/', 'talos'),
    ('/var/lib/k0s/', 'k0s'),
    ('/run/config/pki/', 'docker-desktop'),
    ('/var/lib/kubernetes/', 'kubernetes-the-hard-way'),
    ('/etc/kubernetes/pki/', 'kubeadm'),
)


def detect_distribution(process: ApiserverProcess, parent_root: str) -> str:
    if process.kind != 'kube-apiserver':
        return process.kind
    if 'openshift-config' in process.flags:
        return 'openshift'
    if process.parent == 'k0s':
        return 'k0s'
    paths = [value for value in process.flags.values() if value.startswith('/')]
    for prefix, name in DISTRIBUTION_PATHS:
        if any(path.startswith(prefix) for path in paths):
            if name == 'kubeadm' and os.path.isdir(f'{parent_root}/kind'):
                return 'kind'  # kubeadm inside a kind node container
            return name
    return 'kubernetes'


def client_ca_setting(procfs: str, process: ApiserverProcess) -> ClientCaSetting:
    """The effective --client-ca-file of `process`, from wherever its distribution keeps it."""
    distribution = detect_distribution(process, f'{procfs}/{process.ppid}/root')
    try:
        return _client_ca_setting(procfs, process, distribution)
    except PermissionError as e:
        return ClientCaSetting(
            None,
            'config_file',
            distribution,
            unjudgeable=f'the Agent may not read its configuration ({e}). Run the Agent as root (in Kubernetes: '
            'hostPID, and privileged or CAP_SYS_PTRACE with CAP_DAC_READ_SEARCH)',
        )


def _client_ca_setting(procfs: str, process: ApiserverProcess, distribution: str) -> ClientCaSetting:
    base = f'{procfs}/{process.pid}'
    if process.kind == 'k3s':
        return k3s_setting(base, process)
    if process.kind == 'microk8s':
        return microk8s_setting(procfs, process)
    if process.kind == 'microshift':
        return ClientCaSetting(
            None,
            'distribution_default',
            'microshift',
            unjudgeable='MicroShift embeds kube-apiserver and generates its client CA internally; its configuration '
            'does not name the client CA, so CIS 1.2.31 cannot be judged from the node',
        )
    if process.kind == 'openshift-3':
        config = process.flags.get('config', '/etc/origin/master/master-config.yaml')
        return openshift_setting(base, config, ('kubernetesMasterConfig', 'apiServerArguments'), 'openshift-3')
    value = process.flags.get(CONTROL.flag)
    if value is None and 'openshift-config' in process.flags:
        return openshift_setting(base, process.flags['openshift-config'], ('apiServerArguments',), distribution)
    return ClientCaSetting(value, 'process', distribution)
