"""The instance's options, validated once, with errors that name the option."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from datadog_checks.base import ConfigurationError

from .control import CONTROL


@dataclass(frozen=True)
class Settings:
    tags: tuple[str, ...] = ()
    days_warning: int = 30
    event_resend_interval: int = 86400
    rescan_every: int = 10
    max_ca_file_size: int = 4 * 1024 * 1024
    host_root: str = ''  # where the host's files are seen; '' for <procfs>/1/root, the root of the host's init
    benchmark_version: str = ''

    @classmethod
    def from_instance(cls, instance: Mapping) -> Settings:
        if not isinstance(instance, Mapping):
            raise ConfigurationError('the instance must be a mapping of options')
        tags = instance.get('tags') or []
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise ConfigurationError('`tags` must be a list of strings')
        return cls(
            tags=tuple(tags),
            days_warning=_integer(instance, 'days_warning', cls.days_warning, minimum=0),
            event_resend_interval=_integer(instance, 'event_resend_interval', cls.event_resend_interval, minimum=0),
            rescan_every=_integer(instance, 'rescan_every', cls.rescan_every, minimum=1),
            max_ca_file_size=_integer(instance, 'max_ca_file_size', cls.max_ca_file_size, minimum=1),
            host_root=_string_option(instance, 'host_root'),
            benchmark_version=_benchmark_version(instance),
        )


# Options of every check instance, handled by the Agent or the base class.
GENERIC_OPTIONS = frozenset(
    {
        'tags',
        'service',
        'min_collection_interval',
        'empty_default_hostname',
        'metric_patterns',
        'disable_generic_tags',
        'enable_legacy_tags_normalization',
        'name',
    }
)
KNOWN_OPTIONS = GENERIC_OPTIONS | set(Settings.__dataclass_fields__)


def _string_option(instance: Mapping, name: str) -> str:
    value = instance.get(name) or ''
    if not isinstance(value, str):
        raise ConfigurationError(f'`{name}` must be a string, got {value!r}')
    return value.rstrip('/')


def _benchmark_version(instance: Mapping) -> str:
    version = instance.get('benchmark_version')
    if version is None or version == '':
        return ''
    version = str(version)
    if version not in CONTROL.numbering:
        known = ', '.join(CONTROL.numbering)
        raise ConfigurationError(
            f'`benchmark_version` must be one of the CIS Kubernetes versions {known}, got {version}'
        )
    return version


def _integer(instance: Mapping, name: str, default: int, minimum: int) -> int:
    value = instance.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f'`{name}` must be an integer of at least {minimum}, got {value!r}')
    return value
