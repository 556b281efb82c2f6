"""An X.509 reader that accepts and refuses exactly what kube-apiserver's Go does, and says which certificates can
sign a client certificate.

kube-apiserver parses each CERTIFICATE block of --client-ca-file with Go's crypto/x509.ParseCertificate: this module
mirrors Go 1.19's crypto/x509/parser.go and the cryptobyte DER reader under it, rule for rule (lenient where Go is
lenient: `&` and `*` in a PrintableString, an unknown public key algorithm, explicit defaults, empty names, trailing
data inside most structures). Where newer Go (which current Kubernetes is built with) refuses more, the certificate is
refused too, with `NewerGoRefusal`, so that the check never passes a file a current apiserver would not load.
Which certificates can sign follows Go's CheckSignatureFrom (x509.go) and what Verify asks of a root (verify.go).
It stands in for cryptography, whose import alone costs the Agent 14 MB. Proven against Go by
tests/test_x509_oracle.py.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

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
KEY_USAGE_CERT_SIGN = 1 << 5
RSA, DSA, ECDSA, ED25519 = 'RSA', 'DSA', 'ECDSA', 'Ed25519'
PUBLIC_KEY_ALGORITHMS = {
    (1, 2, 840, 113549, 1, 1, 1): RSA,
    (1, 2, 840, 10040, 4, 1): DSA,
    (1, 2, 840, 10045, 2, 1): ECDSA,
    (1, 3, 101, 112): ED25519,
}
# The named curves Go accepts, as (name, p, b) of y^2 = x^3 - 3x + b mod p; a point must be on its curve.
EC_CURVES = {
    (1, 3, 132, 0, 33): ('P-224', 2**224 - 2**96 + 1, 0xB4050A850C04B3ABF54132565044B0B7D7BFD8BA270B39432355FFB4),
    (1, 2, 840, 10045, 3, 1, 7): (
        'P-256',
        2**256 - 2**224 + 2**192 + 2**96 - 1,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    ),
    (1, 3, 132, 0, 34): (
        'P-384',
        2**384 - 2**128 - 2**96 + 2**32 - 1,
        0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
    ),
    (1, 3, 132, 0, 35): (
        'P-521',
        2**521 - 1,
        0x0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00,
    ),
}
OID_COMMON_NAME = (2, 5, 4, 3)
OID_AUTHORITY_INFO_ACCESS = (1, 3, 6, 1, 5, 5, 7, 1, 1)
OID_EKU_ANY = (2, 5, 29, 37, 0)
OID_EKU_CLIENT_AUTH = (1, 3, 6, 1, 5, 5, 7, 3, 2)
PRINTABLE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?*&")
# Why a certificate cannot sign a client certificate that kube-apiserver accepts, as the messages say it.
NOT_CA_V3 = 'version 3 without basicConstraints CA:TRUE'
CA_FALSE = 'basicConstraints CA:FALSE'
NO_KEY_CERT_SIGN = 'CA:TRUE but keyUsage lacks keyCertSign'
RSA_UNDER_1024 = 'an RSA key under 1024 bits (refused by Go 1.24 and later)'
RSA_EVEN = 'an even RSA modulus or exponent (refused by Go 1.24 and later)'
RSA_EXPONENT = 'an RSA exponent Go cannot verify with'
# Answers that hold for the Go current Kubernetes is built with, not for Go 1.19 (which signs with these keys).
NEWER_GO_SIGNING_PROBLEMS = frozenset({RSA_UNDER_1024, RSA_EVEN})
NO_CLIENT_AUTH = 'extendedKeyUsage without clientAuth'
UNHANDLED_CRITICAL = 'an unhandled critical extension'
OWN_NAMES_OUTSIDE = 'a subjectAltName outside its own nameConstraints'


class NewerGoRefusal(ValueError):
    """A certificate Go 1.19 reads but newer Go (current Kubernetes builds) refuses."""


@dataclass(frozen=True)
class BundleCertificate:
    subject: str
    not_before: float  # POSIX timestamps, as Go's Verify compares them (both ends inclusive)
    not_after: float
    version: int = 3
    public_key: str = ''  # RSA, ECDSA P-256, Ed25519, DSA, or the OID Go does not know
    signing_problem: str | None = None  # why it cannot sign a client certificate; None when it can

    @property
    def is_ca(self) -> bool:
        """It can sign client certificates that kube-apiserver verifies (Go's CheckSignatureFrom and Verify)."""
        return self.signing_problem is None


def _fail(what: str):
    raise ValueError(f'x509: {what}')


def _element(s: bytes) -> tuple[int, bytes, bytes, bytes]:
    """(tag, content, element, rest) of the first DER element, as cryptobyte's readASN1."""
    if len(s) < 2:
        _fail('truncated DER')
    tag, first = s[0], s[1]
    if tag & 0x1F == 0x1F:
        _fail('high tag number')
    if not first & 0x80:
        header, length = 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(s) < 2 + count:
            _fail('bad DER length')
        length = int.from_bytes(s[2 : 2 + count], 'big')
        if length < 128 or length >> ((count - 1) * 8) == 0:
            _fail('non-minimal DER length')
        header = 2 + count
    end = header + length
    if end > len(s):
        _fail('truncated DER')
    return tag, s[header:end], s[:end], s[end:]


def _read(s: bytes, tag: int) -> tuple[bytes, bytes]:
    got, content, _, rest = _element(s)
    if got != tag:
        _fail(f'expected tag {tag:#x}, got {got:#x}')
    return content, rest


def _peek(s: bytes, tag: int) -> bool:
    return bool(s) and s[0] == tag


def _der_integer(s: bytes, tag: int = INTEGER) -> tuple[int, bytes]:
    content, rest = _read(s, tag)
    if not content or (len(content) > 1 and (content[0], content[1] & 0x80) in ((0, 0), (0xFF, 0x80))):
        _fail('bad INTEGER')
    return int.from_bytes(content, 'big', signed=True), rest


def _int64(s: bytes) -> tuple[int, bytes]:
    value, rest = _der_integer(s)
    if not -(2**63) <= value < 2**63:
        _fail('INTEGER out of range')
    return value, rest


def _oid(s: bytes, minimal: list | None = None) -> tuple[tuple[int, ...], bytes]:
    """An OID as Go 1.19's cryptobyte reads it (arcs under 2^31); `minimal` collects the newer-Go refusal."""
    content, rest = _read(s, OID)
    if not content:
        _fail('empty OID')
    values, i, n = [], 0, len(content)
    while i < n:
        value = 0
        for k in range(5):
            if i >= n or value >= 1 << 24:
                _fail('bad OID')
            byte = content[i]
            i += 1
            if k == 0 and byte == 0x80 and minimal is not None:
                minimal.append('an OID arc not minimally encoded')
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        else:
            _fail('bad OID')
        values.append(value)
    first = values[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return head + tuple(values[1:]), rest


def _boolean(s: bytes) -> tuple[bool, bytes]:
    content, rest = _read(s, BOOLEAN)
    if len(content) != 1 or content[0] not in (0, 0xFF):
        _fail('bad BOOLEAN')
    return content[0] == 0xFF, rest


def _bit_string(s: bytes) -> tuple[bytes, int, bytes]:
    """(bytes, padding bits, rest)."""
    content, rest = _read(s, BIT_STRING)
    if not content:
        _fail('bad BIT STRING')
    padding, body = content[0], content[1:]
    if padding > 7 or (not body and padding) or (body and body[-1] & ((1 << padding) - 1)):
        _fail('bad BIT STRING')
    return body, padding, rest


def _right_align(body: bytes, padding: int) -> bytes:
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


def _time(s: bytes) -> tuple[float, bytes]:
    """A UTCTime or GeneralizedTime as cryptobyte reads it: time.Parse, then only the canonical form round-trips
    (UTCTime also without seconds; an offset instead of Z, but never +0000)."""
    tag = s[0] if s else -1
    if tag not in (UTC_TIME, GENERALIZED_TIME):
        _fail('unsupported time format')
    content, rest = _read(s, tag)
    match = (_UTC_TIME if tag == UTC_TIME else _GENERALIZED_TIME).fullmatch(content)
    if match is None:
        _fail('malformed time')
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
            _fail('malformed time zone')
    if not (1 <= day <= days and hour < 24 and minute < 60 and second < 60):
        _fail('time out of range')
    if tag == UTC_TIME and year >= 2050:
        year -= 100
    return _days_from_civil(year, month, day) * 86400.0 + hour * 3600 + minute * 60 + second - offset, rest


def _string(tag: int, value: bytes, newer: list) -> str:
    """An attribute value as Go 1.19's parseASN1String; the only string types Go reads in names."""
    if tag == 0x14:  # T61String: Go takes the bytes as they are
        return value.decode('latin-1')
    if tag == 0x13:
        if not PRINTABLE.issuperset(value):
            _fail('invalid PrintableString')
        return value.decode('ascii')
    if tag == 0x0C:
        try:
            return value.decode('utf-8')
        except UnicodeDecodeError:
            _fail('invalid UTF-8 string')
    if tag == 0x1E:
        if len(value) % 2:
            _fail('invalid BMPString')
        units = [int.from_bytes(value[i : i + 2], 'big') for i in range(0, len(value), 2)]
        if units[-2:] == [0]:
            units = units[:-1]
        if any(u in (0xFFFE, 0xFFFF) or 0xFDD0 <= u <= 0xFDEF or 0xD800 <= u <= 0xDFFF for u in units):
            newer.append('a BMPString with a surrogate or noncharacter')
        return b''.join(u.to_bytes(2, 'big') for u in units).decode('utf-16-be', 'replace')
    if tag == 0x16:
        if any(b >= 0x80 for b in value):
            _fail('invalid IA5String')
        return value.decode('ascii')
    if tag == 0x12:
        if not set(value) <= set(b'0123456789 '):
            _fail('invalid NumericString')
        return value.decode('ascii')
    _fail(f'unsupported string type {tag:#x}')
    raise AssertionError  # unreachable: keeps type checkers content


def _name(element: bytes, newer: list) -> str:
    """The last common name of a Name, after validating it as Go's parseName."""
    raw, _ = _read(element, SEQUENCE)
    common_name = ''
    while raw:
        rdn, raw = _read(raw, SET)
        while rdn:
            attribute, rdn = _read(rdn, SEQUENCE)
            kind, attribute = _oid(attribute, newer)
            if not attribute:
                _fail('invalid attribute value')
            tag, value, _, _ = _element(attribute)
            text = _string(tag, value, newer)
            if kind == OID_COMMON_NAME:
                common_name = text
    return f'CN={common_name}' if common_name else '<no common name>'


def _algorithm(content: bytes, newer: list) -> tuple[tuple[int, ...], bytes | None]:
    """(OID, parameters element or None), as Go's parseAI."""
    algorithm, rest = _oid(content, newer)
    if not rest:
        return algorithm, None
    _, _, params, _ = _element(rest)
    return algorithm, params


def _domain_ok(domain: str) -> bool:
    """Go's domainToReverseLabels succeeds."""
    if not domain:
        return True
    labels = domain.split('.')
    return all(labels) and all(33 <= ord(c) <= 126 for c in domain if c != '.')


def _ia5(value: bytes) -> str:
    if any(b >= 0x80 for b in value):
        _fail('not an IA5String')
    return value.decode('ascii')


def _uri_ok(uri: str) -> bool:
    """The cases where Go's url.Parse fails for a SAN URI, and its host check (approximated: see the README)."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        return False
    main, _, fragment = uri.partition('#')
    for part in (main, fragment):
        i = part.find('%')
        while i >= 0:
            if len(part) < i + 3 or not all(c in '0123456789abcdefABCDEF' for c in part[i + 1 : i + 3]):
                return False
            i = part.find('%', i + 3)
    if main.startswith(':'):
        return False
    scheme, colon, rest = main.partition(':')
    if not colon or not scheme[0].isalpha() or not all(c.isalnum() or c in '+-.' for c in scheme):
        return not ('/' not in main.split('?')[0].split(':')[0] and ':' in main.split('?')[0].split('/')[0])
    if rest.startswith('//'):
        authority = rest[2:].split('/')[0].split('?')[0]
        host = authority.rpartition('@')[2]
        if host.startswith('['):
            end = host.find(']')
            if end < 0 or (host[end + 1 :] and not host[end + 1 :].startswith(':')):
                return False
            port = host[end + 2 :] if host[end + 1 :] else ''
        else:
            port = host.rpartition(':')[2] if ':' in host else ''
        if port and not port.isdigit():
            return False
        return _domain_ok(host)
    return True


def _subject_alt_names(value: bytes, found_names: list) -> bool:
    """Validate a subjectAltName as Go's parseSANExtension, adding (kind, data) of each name to `found_names`;
    whether it held a name Go parses."""
    names, _ = _read(value, SEQUENCE)
    found = False
    while names:
        tag, data, _, names = _element(names)
        kind = tag ^ 0x80
        found_names.append((kind, data))
        if kind in (1, 2, 6):
            text = _ia5(data)
            if kind == 6 and not _uri_ok(text):
                _fail('cannot parse URI in subjectAltName')
            found = True
        elif kind == 7:
            if len(data) not in (4, 16):
                _fail('cannot parse IP address in subjectAltName')
            found = True
    return found


_ATEXT = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$%&'*+-/=?^_`{|}~.")


def _mailbox(text: str) -> tuple[str, str] | None:
    """(local part, domain) as Go's parseRFC2821Mailbox, or None."""
    if not text:
        return None
    local, i, n = [], 0, len(text)
    if text[0] == '"':
        i = 1
        while True:
            if i >= n:
                return None
            c = ord(text[i])
            i += 1
            if c == 0x22:
                break
            if c == 0x5C:
                if i >= n:
                    return None
                escaped = ord(text[i])
                if not (escaped in (11, 12) or 1 <= escaped <= 9 or 14 <= escaped <= 127):
                    return None
                local.append(text[i])
                i += 1
            elif c in (11, 12, 32, 33, 127) or 1 <= c <= 8 or 14 <= c <= 31 or 35 <= c <= 91 or 93 <= c <= 126:
                local.append(chr(c))
            else:
                return None
    else:
        while i < n:
            c = text[i]
            if c == '\\':
                i += 1
                if i >= n:
                    return None
            elif c not in _ATEXT:
                break
            local.append(text[i])
            i += 1
        part = ''.join(local)
        if not part or part[0] == '.' or part[-1] == '.' or '..' in part:
            return None
    if i >= n or text[i] != '@':
        return None
    domain = text[i + 1 :]
    return (''.join(local), domain) if _domain_ok(domain) else None


def _reverse_labels(domain: str) -> list[str] | None:
    """Go's domainToReverseLabels, or None."""
    if not _domain_ok(domain):
        return None
    return domain.split('.')[::-1] if domain else []


def _match_domain(domain: str, constraint: str) -> bool:
    """Go's matchDomainConstraint; ValueError where Go returns an error."""
    if not constraint:
        return True
    labels = _reverse_labels(domain)
    if labels is None:
        raise ValueError('cannot parse domain')
    subdomains_only = constraint[0] == '.'
    constraint_labels = _reverse_labels(constraint[1:] if subdomains_only else constraint)
    if constraint_labels is None:
        raise ValueError('cannot parse constraint')
    if len(labels) < len(constraint_labels) or (subdomains_only and len(labels) == len(constraint_labels)):
        return False
    return all(c.lower() == d.lower() for c, d in zip(constraint_labels, labels, strict=False))


def _match_email(mailbox: tuple[str, str], constraint: str) -> bool:
    if '@' in constraint:
        wanted = _mailbox(constraint)
        if wanted is None:
            raise ValueError('cannot parse constraint')
        return mailbox[0] == wanted[0] and mailbox[1].lower() == wanted[1].lower()
    return _match_domain(mailbox[1], constraint)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return '%' not in text


def _uri_host(uri: str) -> str:
    """The host (with port) Go's url.Parse finds in a URI (approximated: no percent-decoding)."""
    main = uri.partition('#')[0]
    scheme, colon, rest = main.partition(':')
    has_scheme = bool(colon) and bool(scheme) and scheme[0].isalpha() and all(c.isalnum() or c in '+-.' for c in scheme)
    if not has_scheme:
        rest = main
        if rest.startswith('///'):
            return ''
    rest = rest.partition('?')[0]
    if not rest.startswith('//'):
        return ''
    return rest[2:].split('/')[0].rpartition('@')[2]


def _match_uri(uri: str, constraint: str) -> bool:
    host = _uri_host(uri)
    if not host:
        raise ValueError('URI with empty host')
    if ':' in host and not host.endswith(']'):
        name, _, port = host.rpartition(':')
        if ':' in name and not (name.startswith('[') and name.endswith(']')):
            raise ValueError('too many colons')
        host = name[1:-1] if name.startswith('[') and name.endswith(']') else name
        if '[' in host or ']' in host:
            raise ValueError('bad host')
    if (host.startswith('[') and host.endswith(']')) or _is_ip(host):
        raise ValueError('URI with IP')
    return _match_domain(host, constraint)


def _match_ip(ip: bytes, constraint: tuple[bytes, bytes]) -> bool:
    address, mask = constraint
    return len(ip) == len(address) and all(a & m == b & m for a, b, m in zip(ip, address, mask, strict=True))


def _names_within_constraints(names: list[tuple[int, bytes]], constraints: dict) -> bool:
    """Go's check of a root's own subjectAltNames against its own nameConstraints (Verify's isValid)."""
    try:
        for kind, data in names:
            if kind == 1:
                name = _mailbox(data.decode('ascii'))
                if name is None:
                    return False
                matcher = _match_email
            elif kind == 2:
                name = data.decode('ascii')
                if _reverse_labels(name) is None:
                    return False
                matcher = _match_domain
            elif kind == 6:
                name, matcher = data.decode('ascii'), _match_uri
            elif kind == 7:
                name, matcher = data, _match_ip
            else:
                continue
            permitted, excluded = constraints[kind]
            if any(matcher(name, constraint) for constraint in excluded):
                return False
            if permitted and not any(matcher(name, constraint) for constraint in permitted):
                return False
    except ValueError:
        return False
    return True


def _name_constraints(value: bytes, newer: list, constraints: dict) -> bool:
    """Validate nameConstraints as Go's parseNameConstraintsExtension, filling `constraints` (GeneralName kind:
    (permitted, excluded)); whether it holds a form Go does not handle."""
    top, rest = _read(value, SEQUENCE)
    if rest:
        _fail('invalid NameConstraints extension')
    subtrees = []
    for index, tag in enumerate((0xA0, 0xA1)):
        if _peek(top, tag):
            content, top = _read(top, tag)
            subtrees.append((index, content))
    if top:
        _fail('invalid NameConstraints extension')
    if not any(content for _, content in subtrees):
        _fail('empty name constraints extension')
    unhandled = False
    for index, trees in subtrees:
        while trees:
            subtree, trees = _read(trees, SEQUENCE)
            tag, data, _, _ = _element(subtree)
            if tag == 0x82 or tag == 0x86:
                domain = _ia5(data)
                if tag == 0x86:
                    try:
                        if '%' not in domain:
                            ipaddress.ip_address(domain)
                            _fail('URI constraint is an IP address')
                    except ValueError as e:
                        if str(e).startswith('x509'):
                            raise
                if not _domain_ok(domain[1:] if domain.startswith('.') else domain):
                    _fail('bad name constraint')
                constraints[tag & 0x1F][index].append(domain)
            elif tag == 0x87:
                if len(data) not in (8, 32):
                    _fail('bad IP constraint')
                mask = data[len(data) // 2 :]
                bits = int.from_bytes(mask, 'big')
                ones = bin(bits).count('1')
                if bits != ((1 << ones) - 1) << (8 * len(mask) - ones):
                    _fail('bad IP constraint mask')
                if len(data) == 32 and data[:12] == bytes(10) + b'\xff\xff':
                    newer.append('an IPv4-mapped IPv6 name constraint')
                constraints[7][index].append((data[: len(data) // 2], mask))
            elif tag == 0x81:
                constraint = _ia5(data)
                if '@' in constraint:
                    if _mailbox(constraint) is None:
                        _fail('bad rfc822Name constraint')
                elif not _domain_ok(constraint[1:] if constraint.startswith('.') else constraint):
                    _fail('bad rfc822Name constraint')
                constraints[1][index].append(constraint)
            else:
                unhandled = True
    return unhandled


@dataclass
class _Extensions:
    basic_constraints: bool = False
    is_ca: bool = False
    key_usage: int = 0
    client_auth_allowed: bool = True
    unhandled_critical: tuple[int, ...] | None = None
    name_constraints: dict | None = None  # GeneralName kind: (permitted, excluded), when the extension is present
    alt_names: list | None = None  # (GeneralName kind, data), when subjectAltName is present


def _extensions(content: bytes, newer: list) -> _Extensions:
    out = _Extensions()
    extensions, _ = _read(content, SEQUENCE)
    seen = set()
    parsed = []
    while extensions:
        extension, extensions = _read(extensions, SEQUENCE)
        oid, extension = _oid(extension, newer)
        critical = False
        if _peek(extension, BOOLEAN):
            critical, extension = _boolean(extension)
        value, _ = _read(extension, OCTET_STRING)
        if oid in seen:
            _fail('certificate contains duplicate extensions')
        seen.add(oid)
        parsed.append((oid, critical, value))
    for oid, critical, value in parsed:
        unhandled = False
        if len(oid) == 4 and oid[:3] == (2, 5, 29):
            number = oid[3]
            if number == 15:
                body, padding, _ = _bit_string(value)
                length = len(body) * 8 - padding
                out.key_usage = sum(1 << i for i in range(min(9, length)) if body[i // 8] >> (7 - i % 8) & 1)
            elif number == 19:
                constraints, _ = _read(value, SEQUENCE)
                out.is_ca = False
                if _peek(constraints, BOOLEAN):
                    out.is_ca, constraints = _boolean(constraints)
                if _peek(constraints, INTEGER):
                    path_length, _ = _int64(constraints)
                    if path_length < 0:
                        newer.append('a negative pathLenConstraint')
                out.basic_constraints = True
            elif number == 17:
                out.alt_names = []
                unhandled = not _subject_alt_names(value, out.alt_names)
            elif number == 30:
                out.name_constraints = {kind: ([], []) for kind in (1, 2, 6, 7)}
                unhandled = _name_constraints(value, newer, out.name_constraints)
            elif number == 31:
                _crl_distribution_points(value)
            elif number == 35:
                key_id, _ = _read(value, SEQUENCE)
                if _peek(key_id, 0x80):
                    _read(key_id, 0x80)
                if critical:
                    newer.append('a critical authorityKeyIdentifier')
            elif number == 37:
                usages, _ = _read(value, SEQUENCE)
                known = []
                while usages:
                    usage, usages = _oid(usages, newer)
                    known.append(usage)
                out.client_auth_allowed = not known or OID_EKU_ANY in known or OID_EKU_CLIENT_AUTH in known
            elif number == 14:
                _read(value, OCTET_STRING)
                if critical:
                    newer.append('a critical subjectKeyIdentifier')
            elif number == 32:
                policies, _ = _read(value, SEQUENCE)
                while policies:
                    policy, policies = _read(policies, SEQUENCE)
                    _oid(policy, newer)
            else:
                unhandled = True
        elif oid == OID_AUTHORITY_INFO_ACCESS:
            accesses, _ = _read(value, SEQUENCE)
            while accesses:
                access, accesses = _read(accesses, SEQUENCE)
                _, access = _oid(access, newer)
                if _peek(access, 0x86):
                    _read(access, 0x86)
            if critical:
                newer.append('a critical authorityInfoAccess')
        else:
            unhandled = True
        if critical and unhandled and out.unhandled_critical is None:
            out.unhandled_critical = oid
    return out


def _crl_distribution_points(value: bytes) -> None:
    points, _ = _read(value, SEQUENCE)
    while points:
        point, points = _read(points, SEQUENCE)
        if not _peek(point, 0xA0):
            continue
        name, _ = _read(point, 0xA0)
        full, _ = _read(name, 0xA0)
        while full and _peek(full, 0x86):
            _, full = _read(full, 0x86)


def _public_key(algorithm: str | None, params: bytes | None, key: bytes) -> tuple[str, str | None]:
    """Validate the key as Go's parsePublicKey; (its description, why Go's RSA verification refuses it or None)."""
    if algorithm == RSA:
        if params != b'\x05\x00':
            _fail('RSA key missing NULL parameters')
        rsa_key, _ = _read(key, SEQUENCE)
        modulus, rsa_key = _der_integer(rsa_key)
        exponent, _ = _int64(rsa_key)
        if modulus <= 0 or exponent <= 0:
            _fail('bad RSA public key')
        if not 2 <= exponent <= 2**31 - 1:  # rsa.VerifyPKCS1v15's checkPub, every Go version
            return RSA, RSA_EXPONENT
        if not modulus & 1 or not exponent & 1:
            return RSA, RSA_EVEN
        return RSA, RSA_UNDER_1024 if modulus.bit_length() < 1024 else None
    if algorithm == ECDSA:
        curve_oid, _ = _oid(params or b'')
        if curve_oid not in EC_CURVES:
            _fail('unsupported elliptic curve')
        name, p, b = EC_CURVES[curve_oid]
        size = (p.bit_length() + 7) // 8
        if len(key) != 1 + 2 * size or key[0] != 4:
            _fail('failed to unmarshal elliptic curve point')
        x, y = int.from_bytes(key[1 : 1 + size], 'big'), int.from_bytes(key[1 + size :], 'big')
        if x >= p or y >= p or (y * y - (x * x * x - 3 * x + b)) % p:
            _fail('failed to unmarshal elliptic curve point')
        return f'ECDSA {name}', None
    if algorithm == ED25519:
        if params is not None or len(key) != 32:
            _fail('bad Ed25519 key')
        return ED25519, None
    if algorithm == DSA:
        y, _ = _der_integer(key)
        dsa_params, _ = _read(params or b'', SEQUENCE)
        p, dsa_params = _der_integer(dsa_params)
        q, dsa_params = _der_integer(dsa_params)
        g, _ = _der_integer(dsa_params)
        if min(y, p, q, g) <= 0:
            _fail('zero or negative DSA parameter')
        return DSA, None
    return '', None


def parse_certificate(der: bytes) -> BundleCertificate:
    """One DER certificate as Go's x509.ParseCertificate reads it; ValueError when Go (1.19, or newer with
    NewerGoRefusal) refuses it."""
    try:
        return _parse_certificate(der)
    except (IndexError, TypeError, UnicodeError, OverflowError) as e:  # malformed input reaching a lookup or decode
        raise ValueError(f'malformed certificate: {e}') from None


def _parse_certificate(der: bytes) -> BundleCertificate:
    newer: list[str] = []
    certificate, trailing = _read(der, SEQUENCE)
    if trailing:
        _fail('trailing data')
    tbs, certificate = _read(certificate, SEQUENCE)
    version = 0
    if _peek(tbs, 0xA0):
        explicit, tbs = _read(tbs, 0xA0)
        version, extra = _int64(explicit)
        if extra:
            _fail('malformed version')
    if version < 0 or version > 2:
        _fail('invalid version')
    version += 1
    serial, tbs = _der_integer(tbs)
    if serial < 0:
        newer.append('a negative serial number')
    inner, tbs = _read(tbs, SEQUENCE)
    outer, certificate = _read(certificate, SEQUENCE)
    if inner != outer:
        _fail("inner and outer signature algorithm identifiers don't match")
    _algorithm(inner, newer)
    _, _, issuer, tbs = _element(tbs)
    _name(issuer, newer)
    validity, tbs = _read(tbs, SEQUENCE)
    not_before, validity = _time(validity)
    not_after, _ = _time(validity)
    _, _, subject_element, tbs = _element(tbs)
    subject = _name(subject_element, newer)
    spki, tbs = _read(tbs, SEQUENCE)
    key_algorithm, spki = _read(spki, SEQUENCE)
    key_oid, params = _algorithm(key_algorithm, newer)
    key, padding, _ = _bit_string(spki)
    algorithm = PUBLIC_KEY_ALGORITHMS.get(key_oid)
    public_key, key_problem = _public_key(algorithm, params, _right_align(key, padding))
    extensions = _Extensions()
    if version > 1:
        for tag in (0x81, 0x82):
            if _peek(tbs, tag):
                _, tbs = _read(tbs, tag)
        if version == 3 and _peek(tbs, 0xA3):
            content, tbs = _read(tbs, 0xA3)
            extensions = _extensions(content, newer)
    _bit_string(certificate)
    if newer:
        raise NewerGoRefusal(f'x509: {newer[0]} (refused by newer Go, which current Kubernetes builds with)')
    return BundleCertificate(
        subject=subject,
        not_before=not_before,
        not_after=not_after,
        version=version,
        public_key=public_key or 'unknown ' + '.'.join(map(str, key_oid)),
        signing_problem=_signing_problem(version, extensions, public_key, key_problem, key_oid),
    )


def _signing_problem(version: int, ext: _Extensions, public_key: str, key_problem: str | None, key_oid) -> str | None:
    """Why Go's CheckSignatureFrom, or Verify with this certificate as the root, refuses a client certificate."""
    if version == 3 and not ext.basic_constraints:
        return NOT_CA_V3
    if ext.basic_constraints and not ext.is_ca:
        return CA_FALSE
    if ext.key_usage and not ext.key_usage & KEY_USAGE_CERT_SIGN:
        return NO_KEY_CERT_SIGN
    if not public_key:
        return f'a public key algorithm Go cannot verify with ({".".join(map(str, key_oid))})'
    if public_key == DSA:
        return 'a DSA key, which Go does not verify signatures with'
    if key_problem is not None:
        return key_problem
    if ext.unhandled_critical is not None:
        return f'{UNHANDLED_CRITICAL} ({".".join(map(str, ext.unhandled_critical))})'
    if not ext.client_auth_allowed:
        return NO_CLIENT_AUTH
    if (
        ext.name_constraints is not None
        and ext.alt_names is not None
        and not _names_within_constraints(ext.alt_names, ext.name_constraints)
    ):
        return OWN_NAMES_OUTSIDE
    return None
