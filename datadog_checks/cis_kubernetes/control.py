"""The control as data: CIS Kubernetes 1.2.31, its number in each benchmark version, and its remediation for each
distribution."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Control:
    id: str
    rule_id: str
    framework: str
    flag: str
    title: str
    rationale: str
    remediation: Mapping[str, str]  # the flag absent or empty: where to set it, per distribution
    ca_rotation: Mapping[str, str]  # every CA expired or expiring: how the distribution renews its client CA
    numbering: Mapping[str, str]  # CIS Kubernetes benchmark version -> this control's number in it


CONTROL = Control(
    id='1.2.31',
    rule_id='cis-kubernetes-1.5.1-1.2.31',
    framework='cis-kubernetes',
    flag='client-ca-file',
    title='The API server should set up TLS connection for client authentication',
    rationale=(
        'With --client-ca-file set, kube-apiserver authenticates any client presenting a certificate signed by one '
        'of the authorities in that file. Without it, kubelets, controllers and administrators cannot authenticate '
        'with client certificates, and a missing or broken file stops the apiserver at its next restart.'
    ),
    # Where each distribution keeps kube-apiserver's arguments, and how a change there takes effect.
    remediation={
        'kubernetes': (
            'Set --client-ca-file=<path/to/client-ca-file> on kube-apiserver (a PEM bundle of the CA certificates '
            'that sign client certificates) wherever this node defines its arguments, then restart kube-apiserver.'
        ),
        'kubeadm': (
            'Edit the static pod manifest /etc/kubernetes/manifests/kube-apiserver.yaml on this node and set '
            '--client-ca-file=/etc/kubernetes/pki/ca.crt (or your client CA bundle); the kubelet restarts the '
            'apiserver when the manifest changes. Keep ClusterConfiguration apiServer.extraArgs in line for upgrades.'
        ),
        'kind': (
            'kind runs kubeadm inside the node container: in it (docker exec), edit '
            '/etc/kubernetes/manifests/kube-apiserver.yaml and set --client-ca-file=/etc/kubernetes/pki/ca.crt; the '
            'kubelet restarts the apiserver. For new clusters, set it through kubeadmConfigPatches in the kind config.'
        ),
        'minikube': (
            'Run `minikube start --extra-config=apiserver.client-ca-file=/var/lib/minikube/certs/ca.crt` (minikube '
            'sets it by default: remove the extra-config that overrides it); minikube restarts the apiserver.'
        ),
        'kubespray': (
            'Set client-ca-file in kube_kubeadm_apiserver_extra_args (group_vars/k8s_cluster) and re-run '
            'cluster.yml, or edit /etc/kubernetes/manifests/kube-apiserver.yaml on this node (the kubelet restarts '
            'the apiserver).'
        ),
        'kops': (
            'Set spec.kubeAPIServer.clientCAFile with `kops edit cluster` (kops sets it to /srv/kubernetes/ca.crt by '
            'default), then `kops update cluster --yes` and `kops rolling-update cluster --yes`.'
        ),
        'rke1': (
            'Set services.kube-api.extra_args.client-ca-file: /etc/kubernetes/ssl/kube-ca.pem in cluster.yml (or '
            'remove the override that empties it), then run `rke up`.'
        ),
        'rke2': (
            'RKE2 sets --client-ca-file itself: remove the kube-apiserver-arg that overrides or empties it from '
            '/etc/rancher/rke2/config.yaml, restore /var/lib/rancher/rke2/server/tls/client-ca.crt if missing, then '
            '`systemctl restart rke2-server` (RKE2 rewrites the static pod manifest).'
        ),
        'talos': (
            'Patch the machine configuration (`talosctl patch machineconfig`): remove the cluster.apiServer.extraArgs '
            'entry that overrides client-ca-file; Talos restarts the apiserver with its own client CA.'
        ),
        'k0s': (
            'k0s sets --client-ca-file itself: remove the client-ca-file override from spec.api.extraArgs in '
            '/etc/k0s/k0s.yaml, restore /var/lib/k0s/pki/ca.crt if missing, then restart the k0scontroller service.'
        ),
        'docker-desktop': (
            'Docker Desktop manages the control plane and sets --client-ca-file=/run/config/pki/ca.crt: reset the '
            'cluster (Settings > Kubernetes > Reset Kubernetes Cluster).'
        ),
        'kubernetes-the-hard-way': (
            'Set --client-ca-file=/var/lib/kubernetes/ca.pem in the kube-apiserver systemd unit '
            '(/etc/systemd/system/kube-apiserver.service), then `systemctl daemon-reload && systemctl restart '
            'kube-apiserver`.'
        ),
        'k3s': (
            'k3s sets --client-ca-file=<data-dir>/server/tls/client-ca.crt itself: remove the kube-apiserver-arg '
            'that overrides or empties client-ca-file from /etc/rancher/k3s/config.yaml, config.yaml.d/*.yaml or the '
            'k3s service command line, restore the file if missing, then `systemctl restart k3s`.'
        ),
        'microk8s': (
            'Set --client-ca-file=${SNAP_DATA}/certs/ca.crt in /var/snap/microk8s/current/args/kube-apiserver, then '
            '`microk8s stop && microk8s start`.'
        ),
        'openshift': (
            'OpenShift manages kube-apiserver through its operator: do not edit the static pod. Check '
            '`oc get kubeapiserver cluster -o yaml` and the client-ca config map in openshift-kube-apiserver, and let '
            'the operator roll out a new revision.'
        ),
        'openshift-3': (
            'Set servingInfo.clientCA (relative to the file) in /etc/origin/master/master-config.yaml, then '
            '`master-restart api`.'
        ),
        'microshift': 'MicroShift generates and manages its client CA; it cannot be configured from the node.',
    },
    # kubeadm renews leaf certificates only, CA rotation is manual (kubernetes.io: kubeadm-certs, "Manual Rotation of
    # CA Certificates"); k3s and RKE2 document `certificate rotate-ca` for their CAs (docs.k3s.io/cli/certificate,
    # validated in k3s-io/k3s issue 7083; docs.rke2.io/security/certificates); MicroK8s `refresh-certs --cert
    # ca.crt` (its command reference, and `microk8s refresh-certs --cert ca.crt` in public use).
    ca_rotation={
        'kubernetes': (
            'Renew the client CA: issue a new CA certificate, add it to the bundle beside the old one, reissue the '
            'client certificates (kubelets, controllers, admins) from it, then remove the old CA; kube-apiserver '
            'reloads the file.'
        ),
        'kubeadm': (
            '`kubeadm certs check-expiration` shows the CA; `kubeadm certs renew` renews only the certificates it '
            'signs, so rotate the CA itself as Kubernetes documents ("Manual rotation of CA certificates": both CAs '
            'in the bundle, reissue, then the new one alone).'
        ),
        'k3s': '`k3s certificate rotate-ca --path=<directory with the new CA files>` on a server, then restart k3s.',
        'rke2': '`rke2 certificate rotate-ca --path=<directory with the new CA files>` on a server, then restart '
        'rke2-server.',
        'microk8s': '`sudo microk8s refresh-certs --cert ca.crt` (it reissues the certificates the CA signs).',
    },
    numbering={
        '1.5.1': '1.2.31',
        '1.6': '1.2.31',
        '1.20': '1.2.30',
        '1.23': '1.2.28',
        '1.24': '1.2.27',
        '1.7': '1.2.27',
        '1.8': '1.2.26',
        '1.9': '1.2.25',
        '1.10': '1.2.25',
        '1.11': '1.2.25',
        '1.12': '1.2.25',
    },
)


def flag_fix(distribution: str) -> str:
    """How to set --client-ca-file where this distribution keeps kube-apiserver's arguments."""
    return CONTROL.remediation.get(distribution, CONTROL.remediation['kubernetes'])


def ca_rotation_fix(distribution: str) -> str:
    """How to renew an expired or expiring client CA on this distribution."""
    rotation = CONTROL.ca_rotation
    return rotation.get(distribution) or rotation['kubeadm' if distribution in ('kind', 'kubespray') else 'kubernetes']


CONTROL_TAG = f'{CONTROL.framework}:{CONTROL.id}'
