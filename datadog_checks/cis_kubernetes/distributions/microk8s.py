"""MicroK8s: kubelite reads kube-apiserver's flags from an arguments file, with snap variables in values."""

from __future__ import annotations

import re

from ..control import CONTROL
from ..files_in_root import read_text_in_root
from ..flags import effective_flags
from ..processes import ApiserverProcess
from ..procfs import process_environment
from .setting import ClientCaSetting

MICROK8S_ARGS_FILE = '/var/snap/microk8s/current/args/kube-apiserver'
MICROK8S_ENVIRONMENT = {'SNAP': '/snap/microk8s/current', 'SNAP_DATA': '/var/snap/microk8s/current'}
SHELL_VARIABLE = re.compile(r'\$\{(\w+)\}|\$(\w+)')


def microk8s_setting(procfs: str, process: ApiserverProcess) -> ClientCaSetting:
    """MicroK8s: kubelite reads kube-apiserver's flags from an arguments file, with snap variables in values."""
    import shlex

    root, cwd = f'{procfs}/{process.pid}/root', f'{procfs}/{process.pid}/cwd'
    path = process.flags.get('apiserver-args-file') or MICROK8S_ARGS_FILE
    environment = {**MICROK8S_ENVIRONMENT, **process_environment(procfs, process.pid)}
    text, why = read_text_in_root(root, cwd, path)
    if text is None:
        return ClientCaSetting(None, 'config_file', 'microk8s', path, f'its arguments file {path} {why}')
    tokens = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            try:
                words = shlex.split(line)
            except ValueError:
                continue
            tokens += [SHELL_VARIABLE.sub(lambda m: environment.get(m[1] or m[2], m[0]), word) for word in words]
    return ClientCaSetting(effective_flags(tokens).get(CONTROL.flag), 'config_file', 'microk8s', path)
