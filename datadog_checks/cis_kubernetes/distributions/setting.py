"""The effective --client-ca-file of one apiserver and where it came from, and the YAML helpers its readers share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ClientCaSetting:
    """The effective --client-ca-file of one apiserver and where it comes from."""

    value: str | None  # None: not set
    source: str  # process | config_file | manifest | distribution_default
    distribution: str
    origin: str = ''  # the file the value was read from, for messages
    unjudgeable: str = ''  # why the setting cannot be judged from this node
    no_apiserver: str = ''  # why this process, though it could, runs no kube-apiserver (k3s --disable-apiserver)


def load_yaml(text: str):
    import yaml  # shipped with the Agent; imported only where a distribution keeps YAML configuration

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def as_mapping(value) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def as_list(value) -> list[str]:
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]
