"""The stubs of datadog-checks-base made as strict as the Agent's C bindings (rtloader) about what a check submits.

The stubs accept anything; the Agent does not. What rtloader does with each argument, read in DataDog/datadog-agent
at commit 03b30714852d0ba87df170a6300e99e8fcb2cebb:
- rtloader/common/builtins/aggregator.c parses submit_metric with PyArg_ParseTuple("OsisdOs|i"),
  submit_service_check with "OssiOss" (check_id, name, hostname and message are `s`) and submit_event with "OsO".
  A `s` argument raises TypeError for a non-str, UnicodeEncodeError for a str that is not valid UTF-8 (a lone
  surrogate, as os.fsdecode makes of a non-UTF-8 byte) and ValueError for an embedded NUL. The exception surfaces in
  the check.
- Tags and the string fields of an event go through as_string() (rtloader/common/stringutils.c), which encodes with
  "UTF-8", "strict" and, on failure, clears the error and returns NULL: py_tag_to_c() then silently skips that tag,
  and an event field becomes NULL (an empty title or text). as_string() copies with strdup, so text after a NUL is
  lost.
- datadog_agent.send_log, read_persistent_cache and write_persistent_cache take `s` arguments too
  (rtloader/common/builtins/datadog_agent.c).
The strict stub raises where rtloader raises and drops where rtloader drops; every drop is recorded, and the suite
fails a test that made one (conftest.py), since the Agent would lose that data without a word.
"""

from __future__ import annotations

from collections.abc import Sequence

from datadog_checks.base.stubs import aggregator as aggregator_stub
from datadog_checks.base.stubs import datadog_agent as agent_stub

EVENT_STRING_FIELDS = (
    'msg_title',
    'msg_text',
    'priority',
    'host',
    'alert_type',
    'aggregation_key',
    'source_type_name',
    'event_type',
)


class Dropped(list):
    """What rtloader would have dropped silently, as (where, value) pairs."""


def parse_s(value, where: str) -> str:
    """PyArg_ParseTuple's `s`."""
    if not isinstance(value, str):
        raise TypeError(f'{where}: argument must be str, not {type(value).__name__}')
    value.encode('utf-8')  # UnicodeEncodeError, as rtloader raises, for a lone surrogate
    if '\0' in value:
        raise ValueError(f'{where}: embedded null character')
    return value


def as_string(value, where: str, dropped: Dropped) -> str | None:
    """rtloader's as_string(): None (NULL) for what it cannot encode, the text up to a NUL otherwise."""
    if value is None:
        return None
    if not isinstance(value, str):
        dropped.append((where, value))
        return None
    try:
        value.encode('utf-8')
    except UnicodeEncodeError:
        dropped.append((where, value))
        return None
    if '\0' in value:
        dropped.append((where, value))
        return value.split('\0', 1)[0]
    return value


def tags_to_c(tags, where: str, dropped: Dropped) -> list[str]:
    if not isinstance(tags, Sequence) or isinstance(tags, str | bytes):
        raise TypeError(f'{where}: tags must be a sequence')
    converted = [as_string(tag, f'{where} tag', dropped) for tag in tags]
    return [tag for tag in converted if tag is not None]


def install(monkeypatch) -> Dropped:
    """Make the stubs strict for one test; returns the list of what rtloader would have dropped."""
    dropped = Dropped()
    stub = aggregator_stub
    submit_metric = stub.submit_metric
    submit_service_check = stub.submit_service_check
    submit_event = stub.submit_event

    def strict_metric(check, check_id, mtype, name, value, tags, hostname, flush_first_value=False):
        parse_s(check_id, 'metric check_id')
        parse_s(name, 'metric name')
        parse_s(hostname, 'metric hostname')
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise TypeError(f'metric {name}: value must be a number')
        tags = tags_to_c(tags, f'metric {name}', dropped)
        return submit_metric(check, check_id, mtype, name, value, tags, hostname, flush_first_value)

    def strict_service_check(check, check_id, name, status, tags, hostname, message):
        for value, where in ((check_id, 'check_id'), (name, 'name'), (hostname, 'hostname'), (message, 'message')):
            parse_s(value, f'service check {where}')
        if not isinstance(status, int) or isinstance(status, bool):
            raise TypeError('service check status must be an int')
        tags = tags_to_c(tags, f'service check {name}', dropped)
        return submit_service_check(check, check_id, name, status, tags, hostname, message)

    def strict_event(check, check_id, event):
        parse_s(check_id, 'event check_id')
        if not isinstance(event, dict):
            raise TypeError('event must be a dict')
        converted = dict(event)
        for key in EVENT_STRING_FIELDS:
            if key in event:
                converted[key] = as_string(event[key], f'event {key}', dropped)
        if event.get('tags') is not None:
            converted['tags'] = tags_to_c(event['tags'], 'event', dropped)
        return submit_event(check, check_id, converted)

    send_log = agent_stub.send_log
    write_cache = agent_stub.write_persistent_cache
    read_cache = agent_stub.read_persistent_cache

    def strict_send_log(log_line, check_id):
        return send_log(parse_s(log_line, 'log line'), parse_s(check_id, 'log check_id'))

    def strict_write_cache(key, value):
        return write_cache(parse_s(key, 'cache key'), parse_s(value, 'cache value'))

    def strict_read_cache(key):
        return read_cache(parse_s(key, 'cache key'))

    monkeypatch.setattr(stub, 'submit_metric', strict_metric)
    monkeypatch.setattr(stub, 'submit_service_check', strict_service_check)
    monkeypatch.setattr(stub, 'submit_event', strict_event)
    monkeypatch.setattr(agent_stub, 'send_log', strict_send_log)
    monkeypatch.setattr(agent_stub, 'write_persistent_cache', strict_write_cache)
    monkeypatch.setattr(agent_stub, 'read_persistent_cache', strict_read_cache)
    return dropped
