"""The finding log: shape, cadence, restarts, secrets, the switch, and the Agent's log collection being off."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import yaml

from datadog_checks.base.stubs import datadog_agent as agent_stub
from devtools import certs
from tests.conftest import needs_standins, write

pytestmark = needs_standins

APISERVER = '/usr/local/bin/kube-apiserver'
CHECK_ID = 'cis_kubernetes:test'
NOW = 1_800_000_000.0
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def logs_enabled():
    agent_stub._config['logs_enabled'] = True


def sent_logs() -> list[dict]:
    return list(agent_stub._sent_logs[CHECK_ID])


def clocked(check, wall: list[float], monotonic: list[float]):
    check._clock, check._monotonic = (lambda: wall[0]), (lambda: monotonic[0])
    return check


def test_failing_node_sends_a_finding_shaped_like_datadogs_compliance_findings(make_check, dd_run_check, apiservers):
    process = apiservers([APISERVER, '--client-ca-file='])
    dd_run_check(make_check({'tags': ['team:platform'], 'benchmark_version': '1.23'}))
    (log,) = sent_logs()
    host = agent_stub.get_hostname()
    assert log['agent_rule_id'] == 'cis-kubernetes-1.5.1-1.2.31'
    assert log['agent_framework_id'] == 'cis-kubernetes'
    assert log['result'] == 'failed'
    assert log['resource_type'] == 'kubernetes_master_node'
    assert log['resource_id'] == f'{host}_kubernetes_master_node'
    assert log['compliance'] == {
        'framework': 'cis-kubernetes',
        'control': '1.2.31',
        'rule_id': 'cis-kubernetes-1.5.1-1.2.31',
        'benchmark_version': '1.23',
        'benchmark_control': '1.2.28',
    }
    assert log['data']['process'] == {'name': 'kube-apiserver', 'pid': process.pid}
    assert log['data']['client_ca_file'] == '' and log['data']['client_ca_file_set'] is False
    assert log['data']['distribution'] == 'kubernetes' and log['data']['value_source'] == 'process'
    assert log['message'].startswith('FAIL') and 'Set --client-ca-file' in log['remediation']
    assert isinstance(log['timestamp'], int) and log['expire_at'].endswith('Z')
    tags = set(log['ddtags'].split(','))
    assert {
        'cis-kubernetes:1.2.31',
        'team:platform',
        'kube_distribution:kubernetes',
        'verdict_source:process',
        'compliance_rule:cis-kubernetes-1.5.1-1.2.31',
        'compliance_status:failed',
        'cis_benchmark_version:1.23',
    } <= tags


def test_passing_node_finding_holds_the_ca_certificates_and_days_left(make_check, dd_run_check, apiservers, workdir):
    ca = write(f'{workdir}/pki/ca.crt', certs.valid_ca(400))
    apiservers([APISERVER, f'--client-ca-file={ca}'])
    dd_run_check(make_check())
    (log,) = sent_logs()
    assert log['result'] == 'passed'
    assert 399 < log['data']['days_left'] <= 400
    (cert,) = log['data']['ca_certificates']
    assert cert['subject'] == 'CN=kubernetes-ca' and cert['not_after'].endswith('Z')


def test_unchanged_finding_again_at_the_interval_and_not_more_often(make_check, dd_run_check, apiservers):
    apiservers([APISERVER, '--client-ca-file='])
    wall, monotonic = [NOW], [100.0]
    check = clocked(make_check({'findings_log_interval': 1200}), wall, monotonic)
    for step in (0, 600, 599):
        monotonic[0] += step
        wall[0] += step
        dd_run_check(check)
    assert len(sent_logs()) == 1
    monotonic[0] += 1
    dd_run_check(check)
    assert len(sent_logs()) == 2


def test_a_change_is_sent_at_once(make_check, dd_run_check, apiservers, workdir):
    ca = write(f'{workdir}/pki/ca.crt', certs.valid_ca())
    apiservers([APISERVER, f'--client-ca-file={ca}'])
    check = make_check()
    dd_run_check(check)
    dd_run_check(check)
    write(ca, b'garbage')
    dd_run_check(check)
    assert [log['result'] for log in sent_logs()] == ['passed', 'failed']


def test_agent_restart_does_not_resend_before_the_interval(make_check, dd_run_check, apiservers):
    apiservers([APISERVER, '--client-ca-file='])
    dd_run_check(clocked(make_check(), [NOW], [5.0]))
    dd_run_check(clocked(make_check(), [NOW + 600], [1.0]))  # a new Agent process: its own monotonic clock
    assert len(sent_logs()) == 1
    dd_run_check(clocked(make_check(), [NOW + 1200], [1.0]))
    assert len(sent_logs()) == 2


def test_no_finding_on_a_node_without_an_apiserver(make_check, dd_run_check):
    dd_run_check(make_check())
    assert sent_logs() == []


def test_unknown_is_an_error_never_a_pass(make_check, dd_run_check, workdir):
    os.makedirs(f'{workdir}/proc')
    agent_stub._config['procfs_path'] = f'{workdir}/proc'  # lists no process: UNKNOWN
    dd_run_check(make_check())
    (log,) = sent_logs()
    assert log['result'] == 'error' and log['data']['status'] == 'UNKNOWN'
    assert 'compliance_status:error' in log['ddtags']


def test_secrets_never_reach_a_finding_log(make_check, dd_run_check, apiservers, workdir):
    secret = 'Sup3rS3cretT0ken'
    apiservers([APISERVER, f'--oidc-client-secret={secret}', f'--client-ca-file={workdir}/{secret}/ca.crt'])
    dd_run_check(make_check())
    (log,) = sent_logs()
    assert secret not in json.dumps(log)
    assert '********' in log['data']['client_ca_file']


def test_findings_logs_can_be_turned_off(make_check, dd_run_check, apiservers, aggregator):
    apiservers([APISERVER, '--client-ca-file='])
    dd_run_check(make_check({'findings_logs': False}))
    assert sent_logs() == []
    assert len(aggregator.events) == 1  # everything else as before


def test_log_collection_off_is_on_the_status_page_after_every_run(
    make_check, dd_run_check, apiservers, aggregator, caplog
):
    # The Agent's status page shows the warnings of the last run (it collects them with get_warnings after each run),
    # so the warning is given on every run; the Agent's own log says it once.
    caplog.set_level(logging.WARNING)
    agent_stub._config['logs_enabled'] = False
    apiservers([APISERVER, '--client-ca-file='])
    check = make_check()
    for _ in range(3):
        dd_run_check(check)
        assert [warning for warning in check.get_warnings() if 'logs_enabled' in warning], 'not on the status page'
    assert sum('logs_enabled' in record.getMessage() for record in caplog.records) == 1
    assert len(aggregator.service_checks('cis_kubernetes.apiserver.client_ca_file')) == 3


def test_log_collection_off_and_findings_logs_off_give_no_warning(make_check, dd_run_check, apiservers):
    agent_stub._config['logs_enabled'] = False
    apiservers([APISERVER, '--client-ca-file='])
    check = make_check({'findings_logs': False})
    dd_run_check(check)
    dd_run_check(check)
    assert not [warning for warning in check.get_warnings() if 'logs_enabled' in warning]


def test_the_configuration_example_keeps_the_finding_logs():
    # An Agent configured from conf.yaml.example with findings_logs on (its default) must not drop the finding logs:
    # the Agent registers the check's log source only from an active `logs:` entry of type integration.
    for path in ('conf.yaml.example', 'datadog_checks/cis_kubernetes/data/conf.yaml.example'):
        example = yaml.safe_load((ROOT / path).read_text())
        assert example['logs'] == [{'type': 'integration', 'source': 'cis_kubernetes', 'service': 'cis_kubernetes'}]
        assert (example['instances'][0] or {}).get('findings_logs', True) is True


def test_log_collection_on_gives_no_warning(make_check, dd_run_check, apiservers):
    apiservers([APISERVER, '--client-ca-file='])
    check = make_check()
    dd_run_check(check)
    assert not [warning for warning in check.warnings if 'logs_enabled' in warning]  # (the wire may say more)
