"""Distributions: where each keeps the effective --client-ca-file of kube-apiserver.

- client_ca.py: which distribution started an apiserver, and the dispatch to its reader
- setting.py: ClientCaSetting, the value and where it came from, and YAML helpers
- k3s.py, microk8s.py, openshift.py: the distributions that keep it in their own configuration
- rke2.py: whether an rke2 server runs kube-apiserver at all (etcd-only servers)
- manifests.py: static pod manifests, compared with the running apiserver
"""
