"""The shipped configuration example and the quick-start demo."""

import shutil
from pathlib import Path

import yaml

from datadog_checks.cis_kubernetes.config import Settings
from datadog_checks.cis_kubernetes.control import CONTROL
from devtools import demo, sync_config
from tests.conftest import needs_standins

ROOT = Path(__file__).resolve().parent.parent


def test_packaged_conf_example_is_the_top_level_one():
    top = (ROOT / 'conf.yaml.example').read_bytes()
    assert (ROOT / 'datadog_checks' / 'cis_kubernetes' / 'data' / 'conf.yaml.example').read_bytes() == top


def test_conf_example_is_rendered_from_the_spec_by_datadogs_tooling():
    assert sync_config.main(['--check']) == 0, 'run: python -m devtools.sync_config'


def test_spec_documents_every_option_with_the_checks_default():
    spec = yaml.safe_load((ROOT / 'assets' / 'configuration' / 'spec.yaml').read_text())
    (instances,) = [o for o in spec['files'][0]['options'] if o.get('template') == 'instances']
    documented = {o['name']: o['value'] for o in instances['options'] if 'name' in o}
    defaults = {name: value for name, value in vars(Settings()).items() if name != 'tags'}
    assert set(documented) == set(defaults)
    for name, value in defaults.items():
        if documented[name]['type'] == 'integer':
            assert documented[name]['example'] == value, name
    assert documented['benchmark_version']['enum'] == list(CONTROL.numbering)


def test_conf_example_copied_as_is_gives_a_valid_instance():
    (instance,) = yaml.safe_load((ROOT / 'conf.yaml.example').read_text())['instances']
    assert Settings.from_instance(instance or {}) == Settings()


@needs_standins
def test_demo_shows_a_passing_and_a_failing_stand_in_node(capsys):
    assert demo.main([]) == 0
    out = capsys.readouterr().out
    assert 'No kube-apiserver runs on this machine' in out
    assert 'cis_kubernetes.apiserver.client_ca_file  OK' in out
    assert 'cis_kubernetes.apiserver.client_ca_file  CRITICAL' in out
    assert 'compliance_status:failed' in out and 'compliance_status:passed' in out
    assert '"result": "failed"' in out and '"result": "passed"' in out  # the finding logs
    assert "'wire_verified:not_verifiable', 'wire_result:no_listener'" in out  # the sleeping stand-ins listen nowhere
    if shutil.which('go'):
        assert "'wire_verified:yes', 'wire_result:advertised'" in out
        assert "'wire_verified:no', 'wire_result:no_request'" in out
        assert 'Confirmed on the wire' in out and 'sends no TLS CertificateRequest' in out
