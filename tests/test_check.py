"""The check end to end, through run() as the Agent calls it, against real stand-in apiserver processes."""

from __future__ import annotations

import logging
import os
import time

import pytest

from datadog_checks.base import AgentCheck, ConfigurationError
from datadog_checks.base.stubs import datadog_agent as agent_stub
from datadog_checks.cis_kubernetes import check as check_module
from devtools import certs
from tests.conftest import needs_separate_root, needs_standins, write

pytestmark = needs_standins

SC = 'cis_kubernetes.apiserver.client_ca_file'
CONTROL_TAG = 'cis-kubernetes:1.2.31'
APISERVER = '/usr/local/bin/kube-apiserver'
COMMON_FLAGS = ['--advertise-address=10.0.0.1', '--allow-privileged=true', '--authorization-mode=Node,RBAC']


def service_checks(aggregator):
    return aggregator.service_checks(SC)


def one_status(aggregator):
    checks = service_checks(aggregator)
    assert len(checks) == 1, checks
    return checks[0]


def metric_value(aggregator, name):
    values = [m.value for m in aggregator.metrics(f'cis_kubernetes.{name}')]
    assert len(values) == 1, values
    return values[0]


def run_with_ca(make_check, dd_run_check, apiservers, workdir, data: bytes, instance=None, extra=()):
    ca = write(f'{workdir}/pki/ca.crt', data)
    apiservers([APISERVER, *COMMON_FLAGS, f'--client-ca-file={ca}', *extra])
    check = make_check(instance)
    dd_run_check(check)
    return check


# -- the verdict table ------------------------------------------------------------------------------------------


def test_valid_ca_bundle_is_ok_without_message(make_check, dd_run_check, aggregator, apiservers, workdir):
    run_with_ca(make_check, dd_run_check, apiservers, workdir, certs.valid_ca(400), {'tags': ['team:test']})
    sc = one_status(aggregator)
    assert sc.status == AgentCheck.OK
    assert not sc.message
    assert set(sc.tags) == {CONTROL_TAG, 'team:test', 'kube_distribution:kubernetes', 'verdict_source:process'}
    assert metric_value(aggregator, 'control.compliant') == 1
    assert metric_value(aggregator, 'apiserver.processes') == 1
    assert 399 < metric_value(aggregator, 'apiserver.client_ca.days_left') <= 400
    assert metric_value(aggregator, 'apiserver.client_ca.certificates') == 1
    for metric in aggregator.metrics('cis_kubernetes.control.compliant'):
        assert {CONTROL_TAG, 'team:test'} <= set(metric.tags)


def test_ca_expiring_soon_warns_and_passes(make_check, dd_run_check, aggregator, apiservers, workdir):
    run_with_ca(make_check, dd_run_check, apiservers, workdir, certs.valid_ca(5), {'days_warning': 7})
    sc = one_status(aggregator)
    assert sc.status == AgentCheck.WARNING
    assert sc.message.startswith('WARNING')
    assert metric_value(aggregator, 'control.compliant') == 1


def test_bundle_certificates_are_counted(make_check, dd_run_check, aggregator, apiservers, workdir):
    data = certs.pem(*(certs.certificate(f'ca-{i}') for i in range(3)), certs.certificate('leaf', is_ca=False))
    run_with_ca(make_check, dd_run_check, apiservers, workdir, data)
    assert metric_value(aggregator, 'apiserver.client_ca.certificates') == 4


@pytest.mark.parametrize(
    'flags',
    [
        pytest.param([], id='absent'),
        pytest.param(['--client-ca-file='], id='empty'),
        pytest.param(['--client-ca-file=/pki/ca.crt', '--client-ca-file='], id='empty after set'),
        pytest.param(['--', '--client-ca-file=/pki/ca.crt'], id='after double dash'),
        pytest.param(['--tls-cert-file', '--client-ca-file=/pki/ca.crt'], id='swallowed by a valued flag'),
    ],
)
def test_flag_not_effectively_set_fails(make_check, dd_run_check, aggregator, apiservers, flags):
    apiservers([APISERVER, *COMMON_FLAGS, *flags])
    dd_run_check(make_check())
    sc = one_status(aggregator)
    assert sc.status == AgentCheck.CRITICAL
    assert sc.message.startswith('FAIL')
    assert 'client certificate authentication is off' in sc.message
    assert metric_value(aggregator, 'control.compliant') == 0


def test_two_token_and_underscore_spellings_pass(make_check, dd_run_check, aggregator, apiservers, workdir):
    ca = write(f'{workdir}/ca.crt', certs.valid_ca())
    apiservers([APISERVER, '--profiling', '--client_ca_file', ca])
    dd_run_check(make_check())
    assert one_status(aggregator).status == AgentCheck.OK


@pytest.mark.parametrize(
    'data',
    [
        pytest.param(b'garbage', id='no certificate'),
        pytest.param(certs.pem(certs.certificate(is_ca=False)), id='no CA'),
        pytest.param(certs.pem(certs.certificate(days_valid=5, starts_in_days=-10)), id='expired'),
        pytest.param(certs.pem(certs.certificate(starts_in_days=2)), id='not yet valid'),
    ],
)
def test_file_that_cannot_authenticate_clients_fails(make_check, dd_run_check, aggregator, apiservers, workdir, data):
    run_with_ca(make_check, dd_run_check, apiservers, workdir, data)
    assert one_status(aggregator).status == AgentCheck.CRITICAL
    assert metric_value(aggregator, 'control.compliant') == 0


def test_missing_file_fails(make_check, dd_run_check, aggregator, apiservers, workdir):
    apiservers([APISERVER, f'--client-ca-file={workdir}/nowhere/ca.crt'])
    dd_run_check(make_check())
    sc = one_status(aggregator)
    assert sc.status == AgentCheck.CRITICAL
    assert 'does not exist' in sc.message


def test_directory_fails(make_check, dd_run_check, aggregator, apiservers, workdir):
    apiservers([APISERVER, f'--client-ca-file={workdir}'])
    dd_run_check(make_check())
    assert one_status(aggregator).status == AgentCheck.CRITICAL


def test_relative_path_is_read_from_the_apiservers_working_directory(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    write(f'{workdir}/srv/pki/ca.crt', certs.valid_ca())
    apiservers([APISERVER, '--client-ca-file=pki/ca.crt'], cwd=f'{workdir}/srv')
    dd_run_check(make_check())
    assert one_status(aggregator).status == AgentCheck.OK


@needs_separate_root
def test_file_is_read_in_the_apiservers_own_root(make_check, dd_run_check, aggregator, apiservers, workdir):
    # The Agent's view of /pki/ca.crt holds a valid CA; the apiserver's own root holds garbage there.
    root = f'{workdir}/apiserver-root'
    write(f'{root}/etc/kubernetes/pki/ca.crt', b'garbage')
    decoy = write(f'{workdir}/etc/kubernetes/pki/ca.crt', certs.valid_ca())
    apiservers([APISERVER, f'--client-ca-file={decoy}'], root=root)
    dd_run_check(make_check())
    assert one_status(aggregator).status == AgentCheck.CRITICAL  # the decoy path does not exist in its root

    aggregator.reset()
    write(f'{root}{decoy}', certs.valid_ca())
    dd_run_check(make_check())
    assert one_status(aggregator).status == AgentCheck.OK


@needs_separate_root
def test_symlink_out_of_the_apiservers_root_does_not_reach_the_agents_files(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    agent_side = write(f'{workdir}/agent/ca.crt', certs.valid_ca())
    root = f'{workdir}/apiserver-root'
    os.makedirs(f'{root}/pki')
    os.symlink(agent_side, f'{root}/pki/ca.crt')
    os.symlink('../../../..' + agent_side, f'{root}/pki/up.crt')
    for name in ('ca.crt', 'up.crt'):
        aggregator.reset()
        with_process = apiservers([APISERVER, f'--client-ca-file=/pki/{name}'], root=root)
        dd_run_check(make_check())
        assert one_status(aggregator).status == AgentCheck.CRITICAL
        with_process.stop()


def test_no_apiserver_sends_no_service_check_and_no_event(make_check, dd_run_check, aggregator, caplog):
    caplog.set_level(logging.DEBUG)
    dd_run_check(make_check())
    assert service_checks(aggregator) == []
    assert aggregator.events == []
    assert metric_value(aggregator, 'apiserver.processes') == 0
    assert aggregator.metrics('cis_kubernetes.control.compliant') == []
    assert [r for r in caplog.records if 'No kube-apiserver on this node' in r.getMessage()]


def test_unexpected_error_is_unknown_and_does_not_escape(
    make_check, dd_run_check, aggregator, apiservers, workdir, monkeypatch
):
    def broken(data):
        raise RuntimeError('parser exploded')

    monkeypatch.setattr(check_module, 'ca_bundle_from_pem', broken)
    run_with_ca(make_check, dd_run_check, apiservers, workdir, certs.valid_ca())
    sc = one_status(aggregator)
    assert sc.status == AgentCheck.UNKNOWN
    assert 'parser exploded' in sc.message
    assert aggregator.metrics('cis_kubernetes.control.compliant') == []


def test_oversized_file_is_unknown_with_the_reason(make_check, dd_run_check, aggregator, apiservers, workdir):
    run_with_ca(make_check, dd_run_check, apiservers, workdir, certs.valid_ca(), {'max_ca_file_size': 100})
    sc = one_status(aggregator)
    assert sc.status == AgentCheck.UNKNOWN
    assert 'max_ca_file_size' in sc.message


def test_worst_verdict_over_all_apiservers(make_check, dd_run_check, aggregator, apiservers, workdir):
    ca = write(f'{workdir}/ca.crt', certs.valid_ca())
    apiservers([APISERVER, f'--client-ca-file={ca}'])
    apiservers([APISERVER, '--client-ca-file='])
    dd_run_check(make_check())
    sc = one_status(aggregator)
    assert sc.status == AgentCheck.CRITICAL
    assert '1 more apiserver process' in sc.message
    assert metric_value(aggregator, 'apiserver.processes') == 2


# -- finding the apiserver --------------------------------------------------------------------------------------


def test_wrappers_carrying_the_flags_are_not_judged(make_check, dd_run_check, aggregator, apiservers):
    apiservers(
        ['/go-runner', '--log-file=/var/log/kube-apiserver.log', APISERVER, '--client-ca-file='], program='go-runner'
    )
    apiservers(['watch-termination', '--', APISERVER, '--client-ca-file='], program='watch-termination')
    apiservers(['sh', '-c', f'{APISERVER} --client-ca-file='], program='sh')
    apiservers(['kube-controller-manager', '--client-ca-file='], program='kube-controller-manager')
    dd_run_check(make_check())
    assert service_checks(aggregator) == []
    assert metric_value(aggregator, 'apiserver.processes') == 0


@pytest.mark.parametrize(
    'program, argv0, prefix',
    [
        ('hyperkube', '/hyperkube', ['apiserver']),
        ('hyperkube', '/hyperkube', ['kube-apiserver']),
    ],
)
def test_cut_names_and_multicall_binaries_are_judged(
    make_check, dd_run_check, aggregator, apiservers, workdir, program, argv0, prefix
):
    ca = write(f'{workdir}/ca.crt', certs.valid_ca())
    apiservers([argv0, *prefix, f'--client-ca-file={ca}'], program=program)
    dd_run_check(make_check())
    assert one_status(aggregator).status == AgentCheck.OK


def test_procfs_path_of_the_agent_is_honoured(make_check, dd_run_check, aggregator, apiservers, workdir):
    apiservers([APISERVER, '--client-ca-file='])
    empty_proc = f'{workdir}/proc'
    os.makedirs(empty_proc)
    agent_stub._config['procfs_path'] = empty_proc
    dd_run_check(make_check())
    assert metric_value(aggregator, 'apiserver.processes') == 0
    (sc,) = service_checks(aggregator)
    assert sc.status == AgentCheck.UNKNOWN and 'procfs_path' in sc.message

    aggregator.reset()
    os.rmdir(empty_proc)
    os.symlink('/proc', empty_proc)  # a /host/proc-like mount of the real one
    dd_run_check(make_check())
    assert metric_value(aggregator, 'apiserver.processes') == 1


# -- runs over time ---------------------------------------------------------------------------------------------


def test_unchanged_file_is_not_parsed_again(make_check, dd_run_check, aggregator, apiservers, workdir, monkeypatch):
    parsed = []
    real = check_module.ca_bundle_from_pem
    monkeypatch.setattr(check_module, 'ca_bundle_from_pem', lambda data: parsed.append(1) or real(data))
    check = run_with_ca(make_check, dd_run_check, apiservers, workdir, certs.valid_ca())
    for _ in range(5):
        dd_run_check(check)
    assert len(parsed) == 1


def test_changed_file_is_judged_on_the_next_run(make_check, dd_run_check, aggregator, apiservers, workdir):
    check = run_with_ca(make_check, dd_run_check, apiservers, workdir, certs.valid_ca())
    assert one_status(aggregator).status == AgentCheck.OK
    write(f'{workdir}/pki/ca.crt', certs.pem(certs.certificate(is_ca=False)))
    aggregator.reset()
    dd_run_check(check)
    assert one_status(aggregator).status == AgentCheck.CRITICAL


def test_restarted_apiserver_is_judged_on_the_next_run(make_check, dd_run_check, aggregator, apiservers, workdir):
    check = run_with_ca(make_check, dd_run_check, apiservers, workdir, certs.valid_ca(), {'rescan_every': 1000})
    assert one_status(aggregator).status == AgentCheck.OK
    first = check._apiservers[0]
    os.kill(first.pid, 9)
    apiservers([APISERVER, '--client-ca-file='])
    aggregator.reset()
    dd_run_check(check)
    assert one_status(aggregator).status == AgentCheck.CRITICAL


def test_second_apiserver_is_found_within_rescan_every_runs(make_check, dd_run_check, aggregator, apiservers, workdir):
    check = run_with_ca(make_check, dd_run_check, apiservers, workdir, certs.valid_ca(), {'rescan_every': 3})
    apiservers([APISERVER, '--client-ca-file='])
    statuses = []
    for _ in range(3):
        aggregator.reset()
        dd_run_check(check)
        statuses.append(one_status(aggregator).status)
    assert statuses[-1] == AgentCheck.CRITICAL


# -- events -----------------------------------------------------------------------------------------------------


def events(aggregator):
    return [e for e in aggregator.events if e['source_type_name'] == 'cis_kubernetes']


def test_first_evaluation_announces_the_status(make_check, dd_run_check, aggregator, apiservers):
    apiservers([APISERVER, '--client-ca-file='])
    dd_run_check(make_check({'tags': ['team:platform']}))
    (event,) = events(aggregator)
    assert event['alert_type'] == 'error'
    assert event['host'] == agent_stub.get_hostname()
    assert event['aggregation_key'] == f'cis-kubernetes-1.5.1-1.2.31:{agent_stub.get_hostname()}'
    assert set(event['tags']) >= {
        CONTROL_TAG,
        'team:platform',
        'compliance_framework:cis-kubernetes',
        'compliance_rule:cis-kubernetes-1.5.1-1.2.31',
        'compliance_status:failed',
    }
    text = event['msg_text']
    assert 'kube-apiserver' in text and 'pid' in text and 'empty' in text
    assert 'Why it matters' in text and '**Fix:** Set --client-ca-file' in text


def test_first_pass_is_a_success_event(make_check, dd_run_check, aggregator, apiservers, workdir):
    run_with_ca(make_check, dd_run_check, apiservers, workdir, certs.valid_ca())
    (event,) = events(aggregator)
    assert event['alert_type'] == 'success'
    assert 'compliance_status:passed' in event['tags']
    assert 'CN=kubernetes-ca' in event['msg_text']


def test_unchanged_status_is_not_announced_again_and_a_change_is(
    make_check, dd_run_check, aggregator, apiservers, workdir
):
    check = run_with_ca(make_check, dd_run_check, apiservers, workdir, certs.valid_ca())
    for _ in range(3):
        dd_run_check(check)
    assert len(events(aggregator)) == 1
    write(f'{workdir}/pki/ca.crt', b'garbage')
    dd_run_check(check)
    dd_run_check(check)
    write(f'{workdir}/pki/ca.crt', certs.valid_ca())
    dd_run_check(check)
    assert [e['alert_type'] for e in events(aggregator)] == ['success', 'error', 'success']


def test_warning_is_a_pass_not_a_status_change(make_check, dd_run_check, aggregator, apiservers, workdir):
    check = run_with_ca(make_check, dd_run_check, apiservers, workdir, certs.valid_ca())
    write(f'{workdir}/pki/ca.crt', certs.valid_ca(3))
    dd_run_check(check)
    assert len(events(aggregator)) == 1


def test_unchanged_failure_is_announced_again_after_the_resend_interval(
    make_check, dd_run_check, aggregator, apiservers
):
    apiservers([APISERVER, '--client-ca-file='])
    check = make_check({'event_resend_interval': 1})
    dd_run_check(check)
    dd_run_check(check)
    assert len(events(aggregator)) == 1
    time.sleep(1.05)
    dd_run_check(check)
    assert len(events(aggregator)) == 2


def test_resend_interval_zero_never_repeats(make_check, dd_run_check, aggregator, apiservers):
    apiservers([APISERVER, '--client-ca-file='])
    check = make_check({'event_resend_interval': 0})
    for _ in range(3):
        dd_run_check(check)
    assert len(events(aggregator)) == 1


def test_agent_restart_does_not_announce_an_unchanged_status(make_check, dd_run_check, aggregator, apiservers):
    apiservers([APISERVER, '--client-ca-file='])
    dd_run_check(make_check())
    dd_run_check(make_check())  # a new instance of the check, as after an Agent restart; the cache persists
    assert len(events(aggregator)) == 1


def test_change_while_the_agent_was_down_is_announced(make_check, dd_run_check, aggregator, apiservers, workdir):
    down = apiservers([APISERVER, '--client-ca-file='])
    dd_run_check(make_check())
    down.stop()
    ca = write(f'{workdir}/ca.crt', certs.valid_ca())
    apiservers([APISERVER, f'--client-ca-file={ca}'])
    dd_run_check(make_check())
    assert [e['alert_type'] for e in events(aggregator)] == ['error', 'success']


# -- secrets ----------------------------------------------------------------------------------------------------


def test_secret_flag_values_never_leave_the_check(make_check, dd_run_check, aggregator, apiservers, workdir, caplog):
    caplog.set_level(logging.DEBUG)
    secret = 'Sup3rS3cretT0ken'
    apiservers(
        [
            APISERVER,
            f'--oidc-client-secret={secret}',
            '--etcd-password',
            secret + 'x',
            f'--client-ca-file={workdir}/{secret}/ca.crt',  # a missing file whose path the message names
        ]
    )
    dd_run_check(make_check())
    sc = one_status(aggregator)
    assert sc.status == AgentCheck.CRITICAL
    outputs = [sc.message, *(e['msg_text'] + e['msg_title'] for e in aggregator.events), caplog.text]
    assert all(secret not in text for text in outputs)
    assert '********' in sc.message


# The process agent's default sensitive words, and the words the issue names.
SECRET_FLAGS = [
    '--oidc-client-secret',
    '--etcd-password',
    '--db_passwd',
    '--mysql_pwd',
    '--access_token',
    '--auth-token',
    '--api_key',
    '--apikey',
    '--cloud-credentials',
    '--stripetoken',
]


@pytest.mark.parametrize('flag', SECRET_FLAGS)
@pytest.mark.parametrize('spelling', ['equals', 'two tokens'])
def test_every_secret_looking_flag_is_scrubbed_from_messages_events_and_logs(
    flag, spelling, make_check, dd_run_check, aggregator, apiservers, workdir, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    secret = 'Zq8-' + flag.strip('-').replace('_', '').replace('-', '')[:8] + '-v4lue'
    given = [f'{flag}={secret}'] if spelling == 'equals' else [flag, secret]
    apiservers([APISERVER, *given, f'--client-ca-file={workdir}/{secret}/ca.crt'])
    dd_run_check(make_check())
    (sc,) = service_checks(aggregator)
    assert sc.status == AgentCheck.CRITICAL
    texts = [sc.message, caplog.text, *(e['msg_text'] + e['msg_title'] for e in aggregator.events)]
    assert all(secret not in text for text in texts)

    def broken(data):  # the same secret in an exception's text, on the UNKNOWN path
        raise RuntimeError(f'cannot parse {secret}')

    monkeypatch.setattr(check_module, 'ca_bundle_from_pem', broken)
    write(f'{workdir}/{secret}/ca.crt', certs.valid_ca())
    aggregator.reset()
    check = make_check()
    dd_run_check(check)
    (sc,) = service_checks(aggregator)
    assert sc.status == AgentCheck.UNKNOWN
    assert secret not in sc.message and secret not in caplog.text


# -- configuration ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    'option, value',
    [
        ('days_warning', -1),
        ('days_warning', 'thirty'),
        ('event_resend_interval', 1.5),
        ('rescan_every', 0),
        ('max_ca_file_size', True),
        ('tags', 'env:prod'),
        ('tags', ['ok', 3]),
    ],
)
def test_bad_configuration_names_the_option(make_check, option, value):
    with pytest.raises(ConfigurationError, match=option):
        make_check({option: value})


def test_unknown_option_is_reported_with_the_likely_one(make_check, dd_run_check, caplog):
    caplog.set_level(logging.WARNING)
    dd_run_check(make_check({'days_warnign': 10, 'tags': ['team:x']}))
    messages = [r.getMessage() for r in caplog.records]
    assert any('`days_warnign`' in m and 'did you mean `days_warning`' in m for m in messages), messages
    assert not any('`tags`' in m for m in messages)
