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
    findings_logs: bool = True
    findings_log_interval: int = 1200
    wire_probe: bool = True  # read what the running apiserver asks of clients in its TLS handshake
    wire_probe_interval: int = 300  # seconds between probes; 0 for every run

    @classmethod
    def from_instance(cls, instance: Mapping) -> Settings:
        if not isinstance(instance, Mapping):
            raise ConfigurationError('the instance must be a mapping of options')
        for option in instance:
            if not isinstance(option, str):
                raise ConfigurationError(f'option names are strings: `{option!r}` ({type(option).__name__}) is not')
        tags = instance.get('tags')
        tags = [] if tags is None else tags  # `tags:` left empty
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise ConfigurationError(f'`tags` must be a list of strings, got {tags!r}')
        return cls(
            tags=tuple(tags),
            days_warning=_integer(instance, 'days_warning', cls.days_warning, minimum=0),
            event_resend_interval=_integer(instance, 'event_resend_interval', cls.event_resend_interval, minimum=0),
            rescan_every=_integer(instance, 'rescan_every', cls.rescan_every, minimum=1),
            max_ca_file_size=_integer(instance, 'max_ca_file_size', cls.max_ca_file_size, minimum=1),
            host_root=_string_option(instance, 'host_root'),
            benchmark_version=_benchmark_version(instance),
            findings_logs=_boolean(instance, 'findings_logs', cls.findings_logs),
            findings_log_interval=_integer(instance, 'findings_log_interval', cls.findings_log_interval, minimum=0),
            wire_probe=_boolean(instance, 'wire_probe', cls.wire_probe),
            wire_probe_interval=_integer(instance, 'wire_probe_interval', cls.wire_probe_interval, minimum=0),
        )


# Options of every check instance, handled by the Agent (the spec's instances/default template) or read by the base
# class (tests/test_config.py finds them in datadog_checks.base's source).
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
        'process_isolation',
        'max_returned_metrics',
        'debug_metrics',
        '__memory_profiling_tags',
    }
)
KNOWN_OPTIONS = GENERIC_OPTIONS | set(Settings.__dataclass_fields__)


def _string_option(instance: Mapping, name: str) -> str:
    value = instance.get(name)
    if value is None:  # absent, or left empty
        return ''
    if not isinstance(value, str):
        raise ConfigurationError(f'`{name}` must be a string, got {value!r}')
    return value.rstrip('/') or value[:1]  # `/` stays the root


def _benchmark_version(instance: Mapping) -> str:
    version = instance.get('benchmark_version')
    if version is None or version == '':
        return ''
    if isinstance(version, float):  # unquoted in YAML: 1.20 arrives as 1.2, 1.10 as 1.1
        versions = [known for known in CONTROL.numbering if known.count('.') == 1 and float(known) == version]
        version = versions[0] if len(versions) == 1 else repr(version)
    if not isinstance(version, str) or version not in CONTROL.numbering:
        known = ', '.join(CONTROL.numbering)
        raise ConfigurationError(
            f'`benchmark_version` must be one of the CIS Kubernetes versions {known} (quoted), got {version!r}'
        )
    return version


def _integer(instance: Mapping, name: str, default: int, minimum: int) -> int:
    value = instance.get(name)
    if value is None:  # absent, or left empty
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f'`{name}` must be an integer of at least {minimum}, got {value!r}')
    return value


def _boolean(instance: Mapping, name: str, default: bool) -> bool:
    value = instance.get(name)
    if value is None:  # absent, or left empty
        return default
    if not isinstance(value, bool):
        raise ConfigurationError(f'`{name}` must be true or false, got {value!r}')
    return value
