"""Announcements (events) survive any persistent-cache content, clock steps both ways and an unwritable cache."""

from __future__ import annotations

import json

import pytest

from datadog_checks.base import AgentCheck
from datadog_checks.base.stubs import datadog_agent as agent_stub
from datadog_checks.cis_kubernetes.announcements import (
    Announcement,
    announcement_due,
    announcement_from_cache,
    announcement_to_cache,
)
from tests.conftest import needs_standins

SC = 'cis_kubernetes.apiserver.client_ca_file'
APISERVER = '/usr/local/bin/kube-apiserver'
NOW = 1_800_000_000.0
DAY = 86400
YEAR = 365 * DAY


@pytest.mark.parametrize(
    'raw',
    [
        '',
        'not json',
        '[]',
        '"failed"',
        '{}',
        '{"status": "failed"}',
        '{"status": "failed", "at": null}',
        '{"status": "failed", "at": "1800000000"}',
        '{"status": "failed", "at": true}',
        '{"status": "failed", "at": 1e999}',
        '{"status": "failed", "at": NaN}',
        '{"status": "maybe", "at": 1}',
        '{"status": null, "at": 1}',
        None,
        b'\xff',
    ],
)
def test_malformed_cache_content_means_nothing_was_announced(raw):
    assert announcement_from_cache(raw, NOW, 100.0) is None
    assert announcement_due(None, 'failed', 100.0, DAY)


def test_cache_round_trip_counts_wall_time_elapsed_before_the_restart():
    raw = announcement_to_cache(Announcement('failed', NOW - 3600, since=0.0))
    announced = announcement_from_cache(raw, NOW, monotonic=500.0)
    assert announced == Announcement('failed', NOW - 3600, since=500.0 - 3600)
    assert not announcement_due(announced, 'failed', 500.0, DAY)
    assert announcement_due(announced, 'failed', 500.0 - 3600 + DAY, DAY)
    assert announcement_due(announced, 'passed', 500.0, DAY)


def test_announcement_in_the_future_counts_from_now():
    """The clock was set back a year after the announcement: the reminder comes one interval from now, not in a
    year."""
    announced = announcement_from_cache(json.dumps({'status': 'failed', 'at': NOW + YEAR}), NOW, monotonic=10.0)
    assert not announcement_due(announced, 'failed', 10.0, DAY)
    assert announcement_due(announced, 'failed', 10.0 + DAY, DAY)


def test_unchanged_pass_is_never_repeated():
    assert not announcement_due(Announcement('passed', NOW, 0.0), 'passed', 10 * YEAR, DAY)


# -- in the check, against a failing stand-in ---------------------------------------------------------------------


@pytest.fixture
def failing_node(apiservers):
    apiservers([APISERVER, '--client-ca-file='])


def run(dd_run_check, check, aggregator, times: int = 1) -> list[int]:
    statuses = []
    for _ in range(times):
        aggregator.reset()
        dd_run_check(check)
        statuses += [sc.status for sc in aggregator.service_checks(SC)]
        statuses += [-1 for _ in aggregator.events]  # -1 marks an event
    return statuses


@needs_standins
@pytest.mark.parametrize('raw', ['{"status": "failed", "at": null}', '{"status": 1}', '[1', '"x"'])
def test_bad_cache_content_gives_one_announcement_and_no_unknown(
    raw, failing_node, make_check, dd_run_check, aggregator
):
    run(dd_run_check, make_check(), aggregator)
    (key,) = [k for k in agent_stub._cache if k.endswith('_announced_status')]  # where the status is kept
    agent_stub._cache[key] = raw  # corrupted while the Agent was down
    statuses = run(dd_run_check, make_check(), aggregator, times=3)
    assert statuses == [AgentCheck.CRITICAL, -1, AgentCheck.CRITICAL, AgentCheck.CRITICAL]
    assert json.loads(agent_stub._cache[key])['status'] == 'failed'


@needs_standins
def test_clock_set_back_a_year_does_not_silence_the_reminder(failing_node, make_check, dd_run_check, aggregator):
    check = make_check({'event_resend_interval': 3600})
    clock, monotonic = [NOW], [1000.0]
    check._clock, check._monotonic = (lambda: clock[0]), (lambda: monotonic[0])
    assert run(dd_run_check, check, aggregator).count(-1) == 1
    clock[0] -= YEAR  # the node's clock is corrected backwards
    monotonic[0] += 1800
    assert run(dd_run_check, check, aggregator).count(-1) == 0
    monotonic[0] += 1800
    assert run(dd_run_check, check, aggregator).count(-1) == 1
    # and across an Agent restart: the cache says "announced a year from now"
    restarted = make_check({'event_resend_interval': 3600})
    restarted._clock, restarted._monotonic = (lambda: clock[0]), (lambda: 5.0)
    assert run(dd_run_check, restarted, aggregator).count(-1) == 0
    restarted._monotonic = lambda: 5.0 + 3600
    assert run(dd_run_check, restarted, aggregator).count(-1) == 1


@needs_standins
def test_clock_set_forward_does_not_repeat_within_one_agent_process(failing_node, make_check, dd_run_check, aggregator):
    check = make_check({'event_resend_interval': 3600})
    clock, monotonic = [NOW], [1000.0]
    check._clock, check._monotonic = (lambda: clock[0]), (lambda: monotonic[0])
    run(dd_run_check, check, aggregator)
    clock[0] += YEAR
    monotonic[0] += 10
    assert run(dd_run_check, check, aggregator).count(-1) == 0


@needs_standins
def test_unwritable_cache_costs_one_repeat_at_agent_start_not_one_per_run(
    failing_node, make_check, dd_run_check, aggregator, monkeypatch
):
    monkeypatch.setattr(agent_stub, 'write_persistent_cache', lambda key, value: None)  # the Agent ignores errors
    check = make_check()
    assert run(dd_run_check, check, aggregator, times=5).count(-1) == 1
    assert run(dd_run_check, make_check(), aggregator, times=3).count(-1) == 1  # an Agent restart: one repeat
