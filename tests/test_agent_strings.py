"""Everything the check submits is text the Agent takes: valid UTF-8 without NUL (tests/rtloader.py)."""

from __future__ import annotations

import os

import pytest

from datadog_checks.cis_kubernetes.reporting import agent_text

UNDECODABLE = os.fsdecode(b'/etc/kubernetes/pki-\xff\xfe/ca.crt')


@pytest.mark.parametrize(
    'text, shown',
    [
        (UNDECODABLE, '/etc/kubernetes/pki-\\xff\\xfe/ca.crt'),
        ('/etc/kubernetes/pki/ca.crt', '/etc/kubernetes/pki/ca.crt'),
        ('CN=été', 'CN=été'),
        ('CN=a\0b', 'CN=a\\x00b'),
        ('\ud800', '\\ud800'),
    ],
)
def test_agent_text_escapes_what_is_not_utf8_as_go_quotes_it(text, shown):
    assert agent_text(text) == shown
    agent_text(text).encode('utf-8')


def test_strict_stub_raises_where_rtloader_raises(make_check):
    check = make_check()
    with pytest.raises(UnicodeEncodeError):
        check.service_check('apiserver.client_ca_file', 2, tags=[], message=f'FAIL: {UNDECODABLE}')
    with pytest.raises(ValueError, match='embedded null'):
        check.service_check('apiserver.client_ca_file', 2, tags=[], message='FAIL: a\0b')


def test_strict_stub_drops_tags_and_event_fields_as_rtloader_does(make_check, aggregator, strict_agent):
    check = make_check()
    check.gauge('control.compliant', 0, tags=['ok:1', f'client_ca_file:{UNDECODABLE}'])
    check.event({'msg_title': 't', 'msg_text': UNDECODABLE, 'tags': ['ok:1']})
    (metric,) = aggregator.metrics('cis_kubernetes.control.compliant')
    assert metric.tags == ['ok:1']
    assert aggregator.events[0]['msg_text'] is None
    assert [where for where, _ in strict_agent] == ['metric cis_kubernetes.control.compliant tag', 'event msg_text']
    strict_agent.clear()  # what this test made on purpose; any other drop fails the test that made it
