"""Static pod manifests: where the kubelet of each distribution finds kube-apiserver's, and the value they set."""

from __future__ import annotations

from collections.abc import Mapping

from ..control import CONTROL
from ..files_in_root import read_text_in_root
from ..flags import effective_flags
from ..processes import APISERVER_PROGRAM
from .setting import as_list, as_mapping, load_yaml

KUBEADM_MANIFEST = '/etc/kubernetes/manifests/kube-apiserver.yaml'
RKE2_MANIFEST = '/var/lib/rancher/rke2/agent/pod-manifests/kube-apiserver.yaml'
# Distributions whose kubelet starts kube-apiserver from a static pod manifest file, and where that file is.
STATIC_POD_MANIFESTS = {
    'kubeadm': KUBEADM_MANIFEST,
    'kind': KUBEADM_MANIFEST,
    'minikube': KUBEADM_MANIFEST,
    'kubespray': KUBEADM_MANIFEST,
    'rke2': RKE2_MANIFEST,
}


def manifest_client_ca(root: str, path: str) -> tuple[bool, str | None]:
    """(whether the static pod manifest exists, its effective --client-ca-file) as read through `root`; a manifest
    the Agent may not read counts as absent (nothing to compare with)."""
    try:
        text, _ = read_text_in_root(root, root, path)
    except PermissionError:
        return False, None
    if text is None:
        return False, None
    document = as_mapping(load_yaml(text))
    containers = [c for c in as_mapping(document.get('spec')).get('containers') or [] if isinstance(c, Mapping)]
    container = next((c for c in containers if c.get('name') == 'kube-apiserver'), containers[0] if containers else {})
    argv = as_list(container.get('command')) + as_list(container.get('args'))
    if argv and argv[0].rsplit('/', 1)[-1] == APISERVER_PROGRAM:
        argv = argv[1:]
    return True, effective_flags(argv).get(CONTROL.flag)
