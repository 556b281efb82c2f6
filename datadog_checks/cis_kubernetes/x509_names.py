"""Names in certificates as Go reads them: attribute values (parseName), subjectAltName and nameConstraints
(parseSANExtension, parseNameConstraintsExtension, parseRFC2821Mailbox)."""

from __future__ import annotations

import ipaddress

from .der import (
    BIT_STRING,
    BOOLEAN,
    GENERALIZED_TIME,
    INTEGER,
    OID,
    SEQUENCE,
    SET,
    UTC_TIME,
    der_bit_string,
    der_boolean,
    der_element,
    der_fail,
    der_int64,
    der_oid,
    der_peek,
    der_read,
    der_time,
)

OID_COMMON_NAME = (2, 5, 4, 3)
PRINTABLE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?*&")


def name_string(tag: int, value: bytes) -> str:
    """A string attribute value as Go's parseASN1String."""
    if tag == 0x14:  # T61String: Go takes the bytes as they are
        return value.decode('latin-1')
    if tag == 0x13:
        if not PRINTABLE.issuperset(value):
            der_fail('invalid PrintableString')
        return value.decode('ascii')
    if tag == 0x0C:
        try:
            return value.decode('utf-8')
        except UnicodeDecodeError:
            der_fail('invalid UTF-8 string')
    if tag == 0x1E:
        if len(value) % 2:
            der_fail('invalid BMPString')
        units = [int.from_bytes(value[i : i + 2], 'big') for i in range(0, len(value), 2)]
        if units and units[-1] == 0:  # a terminator, stripped as Go does
            units = units[:-1]
        if any(u in (0xFFFE, 0xFFFF) or 0xFDD0 <= u <= 0xFDEF or 0xD800 <= u <= 0xDFFF for u in units):
            der_fail('invalid BMPString')
        return b''.join(u.to_bytes(2, 'big') for u in units).decode('utf-16-be')
    if tag == 0x16:
        if any(b >= 0x80 for b in value):
            der_fail('invalid IA5String')
        return value.decode('ascii')
    if not set(value) <= set(b'0123456789 '):  # NumericString, the last of STRING_TAGS
        der_fail('invalid NumericString')
    return value.decode('ascii')


STRING_TAGS = frozenset({0x14, 0x13, 0x0C, 0x1E, 0x16, 0x12})


def attribute_value(tag: int, value: bytes, element: bytes) -> str | None:
    """An attribute value as Go's readASN1Any (Go 1.27): the string types as text; INTEGER, BIT STRING, OBJECT
    IDENTIFIER, the two times and BOOLEAN validated as cryptobyte reads them, and None for them; any other element
    taken as it is."""
    if tag in STRING_TAGS:
        return name_string(tag, value)
    if tag == INTEGER:
        der_int64(element)
    elif tag == BIT_STRING:
        der_bit_string(element)
    elif tag == OID:
        der_oid(element)
    elif tag in (UTC_TIME, GENERALIZED_TIME):
        der_time(element)
    elif tag == BOOLEAN:
        der_boolean(element)
    return None


def common_name(element: bytes) -> str:
    """The last string common name of a Name (pkix.Name skips values that are not strings), after validating it as
    Go's parseName."""
    raw, _ = der_read(element, SEQUENCE)
    common_name = ''
    while raw:
        rdn, raw = der_read(raw, SET)
        while rdn:
            attribute, rdn = der_read(rdn, SEQUENCE)
            kind, attribute = der_oid(attribute)
            if not attribute:
                der_fail('invalid attribute value')
            tag, value, _, _ = der_element(attribute)
            text = attribute_value(tag, value, attribute)
            if kind == OID_COMMON_NAME and text is not None:
                common_name = text
    return f'CN={common_name}' if common_name else '<no common name>'


def domain_ok(domain: str) -> bool:
    """Go's domainToReverseLabels succeeds."""
    if not domain:
        return True
    labels = domain.split('.')
    return all(labels) and all(33 <= ord(c) <= 126 for c in domain if c != '.')


def ia5_string(value: bytes) -> str:
    if any(b >= 0x80 for b in value):
        der_fail('not an IA5String')
    return value.decode('ascii')


def uri_ok(uri: str) -> bool:
    """The cases where Go's url.Parse fails for a SAN URI, and its host check (approximated: docs/how-it-judges.md)."""
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
        return domain_ok(host)
    return True


def subject_alt_names(value: bytes) -> bool:
    """Validate a subjectAltName as Go's parseSANExtension; whether it held a name Go parses. (An IPv4-mapped IPv6
    address is refused by Go 1.27 but loaded by the Go 1.25 and 1.26 that build Kubernetes 1.35 to 1.37: loaded.)"""
    names, _ = der_read(value, SEQUENCE)
    found = False
    while names:
        tag, data, _, names = der_element(names)
        kind = tag ^ 0x80
        if kind in (1, 2, 6):
            text = ia5_string(data)
            if kind == 6 and not uri_ok(text):
                der_fail('cannot parse URI in subjectAltName')
            found = True
        elif kind == 7:
            if len(data) not in (4, 16):
                der_fail('cannot parse IP address in subjectAltName')
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
    return (''.join(local), domain) if domain_ok(domain) else None


def name_constraints_extension(value: bytes) -> bool:
    """Validate nameConstraints as Go's parseNameConstraintsExtension; whether it holds a form Go does not handle."""
    top, rest = der_read(value, SEQUENCE)
    if rest:
        der_fail('invalid NameConstraints extension')
    subtrees = []
    for tag in (0xA0, 0xA1):
        if der_peek(top, tag):
            content, top = der_read(top, tag)
            subtrees.append(content)
    if top:
        der_fail('invalid NameConstraints extension')
    if not any(subtrees):
        der_fail('empty name constraints extension')
    unhandled = False
    for trees in subtrees:
        while trees:
            subtree, trees = der_read(trees, SEQUENCE)
            tag, data, _, _ = der_element(subtree)
            if tag == 0x82 or tag == 0x86:
                domain = ia5_string(data)
                if tag == 0x86:
                    try:
                        if '%' not in domain:
                            ipaddress.ip_address(domain)
                            der_fail('URI constraint is an IP address')
                    except ValueError as e:
                        if str(e).startswith('x509'):
                            raise
                if not domain_ok(domain[1:] if domain.startswith('.') else domain):
                    der_fail('bad name constraint')
            elif tag == 0x87:
                if len(data) not in (8, 32):
                    der_fail('bad IP constraint')
                mask = data[len(data) // 2 :]
                bits = int.from_bytes(mask, 'big')
                ones = bin(bits).count('1')
                if bits != ((1 << ones) - 1) << (8 * len(mask) - ones):
                    der_fail('bad IP constraint mask')
                # An IPv4-mapped IPv6 address is refused by Go 1.27 but loaded by the Go 1.25 and 1.26 that build
                # Kubernetes 1.35 to 1.37: loaded here too (docs/go-versions.md).
            elif tag == 0x81:
                constraint = ia5_string(data)
                if '@' in constraint:
                    if _mailbox(constraint) is None:
                        der_fail('bad rfc822Name constraint')
                elif not domain_ok(constraint[1:] if constraint.startswith('.') else constraint):
                    der_fail('bad rfc822Name constraint')
            else:
                unhandled = True
    return unhandled
