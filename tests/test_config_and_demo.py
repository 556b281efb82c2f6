"""The shipped configuration example and the quick-start demo."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from datadog_checks.cis_kubernetes.config import Settings
from datadog_checks.cis_kubernetes.control import CONTROL
from devtools import demo, standin, sync_config
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
def test_demo_opens_with_a_summary_of_the_nodes_it_shows(capsys):
    assert demo.main([]) == 0
    out = capsys.readouterr().out
    nodes = 5 if shutil.which('go') else 3
    lines = out.splitlines()
    assert lines[0].startswith('No kube-apiserver runs on this machine')
    assert lines[1].startswith(f'{nodes} stand-in nodes, each judged alone')
    table = lines[3 : 4 + nodes]
    assert table[0].split() == ['node', 'what', 'it', 'shows', 'status', 'reason']
    assert [row.split()[0] for row in table[1:]] == [f'demo-node-{i}' for i in range(1, nodes + 1)]
    assert [next(s for s in ('OK', 'WARNING', 'CRITICAL') if f' {s} ' in row) for row in table[1:]] == [
        'OK',
        'CRITICAL',
        'WARNING',
        *(['OK', 'CRITICAL'] if nodes == 5 else []),
    ]
    assert out.count('With --client-ca-file set, kube-apiserver authenticates') == 1  # the rationale, once
    assert 'stubbed.hostname' not in out and 'passed with a warning on demo-node-3' in out
    assert max(len(line) for line in lines) <= 130
    assert 'cis_kubernetes.apiserver.client_ca_file  OK' in out
    assert 'cis_kubernetes.apiserver.client_ca_file  CRITICAL' in out
    assert 'compliance_status:failed' in out and 'compliance_status:passed' in out
    assert '"result": "failed"' in out and '"result": "passed"' in out  # the finding logs
    assert "'wire_result:no_listener'" in out  # the sleeping stand-ins listen nowhere
    if nodes == 5:
        assert "'wire_verified:yes'" in out and "'wire_result:advertised'" in out
        assert "'wire_verified:no'" in out and "'wire_result:no_request'" in out
        assert 'Confirmed on the wire' in out and 'sends no TLS CertificateRequest' in out


@needs_standins
@pytest.mark.skipif(os.geteuid() != 0, reason='the demo runs its stand-ins in namespaces of their own only as root')
def test_demo_judges_only_its_own_stand_ins_whatever_else_runs(workdir):
    """An apiserver that fails the control runs beside the demo: no node of the demo sees it."""
    env = {k: v for k, v in os.environ.items() if k != 'CISK_OWN_NAMESPACES'}  # as a user runs it: not in the suite's
    with standin.running(['/usr/local/bin/kube-apiserver', '--client-ca-file=']) as outsider:
        demo_run = subprocess.run(
            [sys.executable, '-m', 'devtools.demo', '--standins'],
            capture_output=True,
            text=True,
            timeout=240,
            env=env,
            cwd=ROOT,
        )
    assert demo_run.returncode == 0, demo_run.stderr
    assert 'apiservers seen' not in demo_run.stdout
    assert 'demo-node-1  a valid CA bundle' in demo_run.stdout and f'(pid {outsider.pid})' not in demo_run.stdout
    assert "'cis-kubernetes:1.2.31']" in demo_run.stdout
