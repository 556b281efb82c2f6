"""Configuration: every option, every kind of bad value, and the documentation that lists them."""

from __future__ import annotations

import inspect
import logging
import re
from pathlib import Path

import pytest

from datadog_checks.base import ConfigurationError
from datadog_checks.base.checks import base as base_module
from datadog_checks.cis_kubernetes.config import GENERIC_OPTIONS, KNOWN_OPTIONS, Settings

ROOT = Path(__file__).resolve().parent.parent
INTEGER_OPTIONS = {
    'days_warning': 0,
    'event_resend_interval': 0,
    'rescan_every': 1,
    'max_ca_file_size': 1,
    'wire_probe_interval': 0,
}


@pytest.mark.parametrize('option', sorted(INTEGER_OPTIONS))
@pytest.mark.parametrize('value', ['thirty', '30', 1.5, True, [], {}, -1])
def test_bad_integer_is_refused_naming_the_option(option, value):
    if value == -1:
        value = INTEGER_OPTIONS[option] - 1
    with pytest.raises(ConfigurationError, match=f'`{option}`'):
        Settings.from_instance({option: value})


@pytest.mark.parametrize('option', sorted(INTEGER_OPTIONS))
def test_integer_left_empty_takes_its_default(option):
    assert getattr(Settings.from_instance({option: None}), option) == getattr(Settings(), option)


@pytest.mark.parametrize('value', ['', {}, False, 0, 'env:prod', ['ok', 3], [None]])
def test_bad_tags_are_refused(value):
    with pytest.raises(ConfigurationError, match='`tags`'):
        Settings.from_instance({'tags': value})


@pytest.mark.parametrize('value', ['true', 'no', 1, 0, [], {}])
def test_bad_wire_probe_is_refused(value):
    with pytest.raises(ConfigurationError, match='`wire_probe`'):
        Settings.from_instance({'wire_probe': value})


@pytest.mark.parametrize('given, probe', [(True, True), (False, False), (None, True)])
def test_wire_probe_is_a_boolean_on_by_default(given, probe):
    assert Settings.from_instance({'wire_probe': given}).wire_probe is probe


def test_tags_left_empty_are_none():
    assert Settings.from_instance({'tags': None}).tags == ()


@pytest.mark.parametrize(
    'given, version',
    [('1.20', '1.20'), (1.20, '1.20'), (1.1, '1.10'), (1.6, '1.6'), (1.24, '1.24'), ('1.5.1', '1.5.1'), (None, '')],
)
def test_benchmark_version_quoted_or_not(given, version):
    """Unquoted in YAML, 1.20 is the float 1.2: the only CIS version it can be is 1.20."""
    assert Settings.from_instance({'benchmark_version': given}).benchmark_version == version


@pytest.mark.parametrize('given', [1.5, 2, True, 'latest', ['1.20'], 1.3])
def test_unknown_benchmark_version_is_refused(given):
    with pytest.raises(ConfigurationError, match='`benchmark_version`'):
        Settings.from_instance({'benchmark_version': given})


@pytest.mark.parametrize('given, root', [('/', '/'), ('/host/root/', '/host/root'), (None, ''), ('', '')])
def test_host_root(given, root):
    assert Settings.from_instance({'host_root': given}).host_root == root


@pytest.mark.parametrize('given', [5, True, ['/host'], {'path': '/'}])
def test_bad_host_root_is_refused(given):
    with pytest.raises(ConfigurationError, match='`host_root`'):
        Settings.from_instance({'host_root': given})


@pytest.mark.parametrize('key', [1, None, 1.5, ('a',)])
def test_option_name_that_is_not_a_string_is_refused_naming_it(key):
    with pytest.raises(ConfigurationError, match=re.escape(repr(key))):
        Settings.from_instance({key: 'x', 'tags': []})


def test_every_option_the_base_class_reads_is_known():
    source = inspect.getsource(base_module)
    read = set(re.findall(r"instance\.get\(\s*['\"]([\w]+)['\"]", source))
    assert read and read <= GENERIC_OPTIONS, read - GENERIC_OPTIONS


def test_every_option_of_the_configuration_example_is_known():
    text = (ROOT / 'conf.yaml.example').read_text()
    instances = text[text.index('instances:') :]
    documented = set(re.findall(r'## @param (\w+) ', instances))
    assert documented and documented <= KNOWN_OPTIONS, documented - KNOWN_OPTIONS


def test_readme_lists_every_option_of_the_spec():
    readme = (ROOT / 'README.md').read_text()
    table = readme[readme.index('| option | default | meaning |') :].split('\n\n', 1)[0]
    listed = set(re.findall(r'^\| `(\w+)` \|', table, re.MULTILINE))
    assert listed == set(Settings.__dataclass_fields__)
    for name, value in vars(Settings()).items():
        if isinstance(value, bool):  # as YAML spells it
            assert f'| `{name}` | {str(value).lower()} |' in table, name
        elif isinstance(value, int):
            assert f'| `{name}` | {value} |' in table, name


def test_generic_options_are_not_reported_as_unknown(make_check, dd_run_check, caplog):
    caplog.set_level(logging.WARNING)
    dd_run_check(make_check({'process_isolation': False, 'min_collection_interval': 30, 'service': 'x'}))
    assert 'Unknown option' not in caplog.text
