"""The shipped configuration example and the quick-start demo."""

from pathlib import Path

import yaml

from datadog_checks.cis_kubernetes.check import Settings
from devtools import demo
from tests.conftest import needs_standins

ROOT = Path(__file__).resolve().parent.parent


def test_packaged_conf_example_is_the_top_level_one():
    top = (ROOT / 'conf.yaml.example').read_bytes()
    assert (ROOT / 'datadog_checks' / 'cis_kubernetes' / 'data' / 'conf.yaml.example').read_bytes() == top


def test_conf_example_gives_a_valid_instance_and_documents_every_option():
    text = (ROOT / 'conf.yaml.example').read_text()
    (instance,) = yaml.safe_load(text)['instances']
    Settings.from_instance(instance)
    for option, default in vars(Settings()).items():
        expected = '- list of strings - optional' if option == 'tags' else f'- integer - optional - default: {default}'
        assert f'## @param {option} {expected}' in text


@needs_standins
def test_demo_shows_a_passing_and_a_failing_stand_in_node(capsys):
    assert demo.main([]) == 0
    out = capsys.readouterr().out
    assert 'No kube-apiserver runs on this machine' in out
    assert 'cis_kubernetes.apiserver.client_ca_file  OK' in out
    assert 'cis_kubernetes.apiserver.client_ca_file  CRITICAL' in out
    assert 'compliance_status:failed' in out and 'compliance_status:passed' in out
