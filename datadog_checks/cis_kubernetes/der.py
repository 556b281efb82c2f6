"""DER as Go's cryptobyte reads it (golang.org/x/crypto/cryptobyte, vendored in Go's standard library): the
primitives of the check's X.509 reader. Each function reads one element from the front of its input and returns what
follows, or raises ValueError where cryptobyte's Read* returns false."""

from __future__ import annotations

import re

SEQUENCE, SET, INTEGER, BIT_STRING, OCTET_STRING, OID, BOOLEAN, UTC_TIME, GENERALIZED_TIME = (
    0x30,
    0x31,
    0x02,
    0x03,
    0x04,
    0x06,
    0x01,
    0x17,
    0x18,
)


def der_fail(what: str):
    raise ValueError(f'x509: {what}')


def der_element(s: bytes) -> tuple[int, bytes, bytes, bytes]:
    """(tag, content, element, rest) of the first DER element, as cryptobyte's readASN1."""
    if len(s) < 2:
        der_fail('truncated DER')
    tag, first = s[0], s[1]
    if tag & 0x1F == 0x1F:
        der_fail('high tag number')
    if not first & 0x80:
        header, length = 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(s) < 2 + count:
            der_fail('bad DER length')
        length = int.from_bytes(s[2 : 2 + count], 'big')
        if length < 128 or length >> ((count - 1) * 8) == 0:
            der_fail('non-minimal DER length')
        header = 2 + count
    end = header + length
    if end > len(s):
        der_fail('truncated DER')
    return tag, s[header:end], s[:end], s[end:]


def der_read(s: bytes, tag: int) -> tuple[bytes, bytes]:
    got, content, _, rest = der_element(s)
    if got != tag:
        der_fail(f'expected tag {tag:#x}, got {got:#x}')
    return content, rest


def der_peek(s: bytes, tag: int) -> bool:
    return bool(s) and s[0] == tag


def der_integer(s: bytes, tag: int = INTEGER) -> tuple[int, bytes]:
    content, rest = der_read(s, tag)
    if not content or (len(content) > 1 and (content[0], content[1] & 0x80) in ((0, 0), (0xFF, 0x80))):
        der_fail('bad INTEGER')
    return int.from_bytes(content, 'big', signed=True), rest


def der_int64(s: bytes) -> tuple[int, bytes]:
    value, rest = der_integer(s)
    if not -(2**63) <= value < 2**63:
        der_fail('INTEGER out of range')
    return value, rest


def der_oid(s: bytes) -> tuple[tuple[int, ...], bytes]:
    """An OID as cryptobyte's ReadASN1ObjectIdentifier reads it: arcs under 2^31, each minimally encoded."""
    content, rest = der_read(s, OID)
    if not content:
        der_fail('empty OID')
    values, i, n = [], 0, len(content)
    while i < n:
        value = 0
        for k in range(5):
            if i >= n or value >= 1 << 24:
                der_fail('bad OID')
            byte = content[i]
            i += 1
            if k == 0 and byte == 0x80:
                der_fail('an OID arc not minimally encoded')
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        else:
            der_fail('bad OID')
        values.append(value)
    first = values[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return head + tuple(values[1:]), rest


def der_boolean(s: bytes) -> tuple[bool, bytes]:
    content, rest = der_read(s, BOOLEAN)
    if len(content) != 1 or content[0] not in (0, 0xFF):
        der_fail('bad BOOLEAN')
    return content[0] == 0xFF, rest


def der_bit_string(s: bytes) -> tuple[bytes, int, bytes]:
    """(bytes, padding bits, rest)."""
    content, rest = der_read(s, BIT_STRING)
    if not content:
        der_fail('bad BIT STRING')
    padding, body = content[0], content[1:]
    if padding > 7 or (not body and padding) or (body and body[-1] & ((1 << padding) - 1)):
        der_fail('bad BIT STRING')
    return body, padding, rest


def der_right_align(body: bytes, padding: int) -> bytes:
    if not padding or not body:
        return body
    return (int.from_bytes(body, 'big') >> padding).to_bytes(len(body), 'big')


_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_from_civil(year: int, month: int, day: int) -> int:
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


_UTC_TIME = re.compile(rb'([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})?(Z|[+-][0-9]{4})')
_GENERALIZED_TIME = re.compile(rb'([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})(Z|[+-][0-9]{4})')


def der_time(s: bytes) -> tuple[float, bytes]:
    """A UTCTime or GeneralizedTime as cryptobyte reads it: time.Parse, then only the canonical form round-trips
    (UTCTime also without seconds; an offset instead of Z, but never +0000)."""
    tag = s[0] if s else -1
    if tag not in (UTC_TIME, GENERALIZED_TIME):
        der_fail('unsupported time format')
    content, rest = der_read(s, tag)
    match = (_UTC_TIME if tag == UTC_TIME else _GENERALIZED_TIME).fullmatch(content)
    if match is None:
        der_fail('malformed time')
    year, month, day, hour, minute = (int(match[i]) for i in range(1, 6))
    second = int(match[6] or 0)
    if tag == UTC_TIME:
        year += 1900 if year >= 69 else 2000
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = _DAYS_IN_MONTH[month - 1] + (month == 2 and leap) if 1 <= month <= 12 else 0
    zone = match[7]
    offset = 0
    if zone != b'Z':
        zone_minutes = int(zone[3:5])
        offset = (int(zone[1:3]) * 60 + zone_minutes) * 60 * (1 if zone[:1] == b'+' else -1)
        if zone_minutes >= 60 or offset == 0:  # Go formats these otherwise: the round trip fails
            der_fail('malformed time zone')
    if not (1 <= day <= days and hour < 24 and minute < 60 and second < 60):
        der_fail('time out of range')
    if tag == UTC_TIME and year >= 2050:
        year -= 100
    return _days_from_civil(year, month, day) * 86400.0 + hour * 3600 + minute * 60 + second - offset, rest
