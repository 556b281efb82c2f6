"""OpenShift 3 and 4: the client CA of the master configuration file."""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..control import CONTROL
from ..files_in_root import read_text_in_root
from .setting import ClientCaSetting, as_list, as_mapping, load_yaml


def openshift_setting(base: str, config_path: str, arguments_at: tuple[str, ...], distribution: str):
    """OpenShift: the client CA of its master configuration.

    OpenShift resolves the file references of the configuration (servingInfo.clientCA among them: library-go
    config/helpers GetServingInfoFileReferences) against the directory of the configuration file, itself relative
    to the working directory (openshift-kube-apiserver: api.MakeAbs(configFile, ""), helpers.ResolvePaths). The
    values of apiServerArguments are no file references: they become flags, so a relative one is relative to the
    apiserver's working directory, where the file is then read.
    """
    text, why = read_text_in_root(f'{base}/root', f'{base}/cwd', config_path)
    config = load_yaml(text) if text is not None else None
    if not isinstance(config, Mapping):
        reason = why or 'not a YAML or JSON mapping'
        return ClientCaSetting(
            None, 'config_file', distribution, config_path, f'its configuration {config_path} cannot be read: {reason}'
        )
    arguments = config
    for key in arguments_at:
        arguments = as_mapping(arguments.get(key))
    values = as_list(arguments.get(CONTROL.flag))
    value = values[-1] if values else as_mapping(config.get('servingInfo')).get('clientCA')
    if not values and value is not None and value != '' and not str(value).startswith('/'):
        value = os.path.join(os.path.dirname(config_path), str(value))
    return ClientCaSetting(None if value is None else str(value), 'config_file', distribution, config_path)
