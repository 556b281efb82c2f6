"""RKE2: whether an `rke2 server` runs kube-apiserver at all (etcd-only servers run with disable-apiserver)."""

from __future__ import annotations

from ..processes import disables_apiserver
from ..procfs import process_environment
from .k3s import k3s_style_config
from .setting import as_list

RKE2_CONFIG = '/etc/rancher/rke2/config.yaml'


def rke2_disables_apiserver(procfs: str, pid: int) -> bool:
    """The server's `disable-apiserver` in its configuration (its title hides its command line). rke2 reads it with
    k3s's configfilearg ($RKE2_CONFIG_FILE, else /etc/rancher/rke2/config.yaml, then config.yaml.d/*.yaml); with it
    rke2 removes its kube-apiserver static pod (pkg/executor/staticpod/cleanup.go)."""
    path = process_environment(procfs, pid).get('RKE2_CONFIG_FILE') or RKE2_CONFIG
    base = f'{procfs}/{pid}'
    try:
        config = k3s_style_config(f'{base}/root', f'{base}/cwd', path)
    except OSError:  # gone, or not readable: the server is taken as running its apiserver
        return False
    return disables_apiserver(['--disable-apiserver=' + value for value in as_list(config.get('disable-apiserver'))])
