"""Names in certificates as Go reads them: attribute strings (parseName), subjectAltName and nameConstraints
(parseSANExtension, parseNameConstraintsExtension), and Verify's check of a root's own names against its own
constraints (verify.go: isValid, matchDomainConstraint, parseRFC2821Mailbox ...)."""

from __future__ import annotations

import ipaddress

from .der import SEQUENCE, SET, der_element, der_fail, der_oid, der_peek, der_read

OID_COMMON_NAME = (2, 5, 4, 3)
PRINTABLE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?*&")


def name_string(tag: int, value: bytes, newer: list) -> str:
    """An attribute value as Go 1.19's parseASN1String; the only string types Go reads in names."""
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
            newer.append('a BMPString with a surrogate or noncharacter')
        return b''.join(u.to_bytes(2, 'big') for u in units).decode('utf-16-be', 'replace')
    if tag == 0x16:
        if any(b >= 0x80 for b in value):
            der_fail('invalid IA5String')
        return value.decode('ascii')
    if tag == 0x12:
        if not set(value) <= set(b'0123456789 '):
            der_fail('invalid NumericString')
        return value.decode('ascii')
    der_fail(f'unsupported string type {tag:#x}')
    raise AssertionError  # unreachable: keeps type checkers content


def common_name(element: bytes, newer: list) -> str:
    """The last common name of a Name, after validating it as Go's parseName."""
    raw, _ = der_read(element, SEQUENCE)
    common_name = ''
    while raw:
        rdn, raw = der_read(raw, SET)
        while rdn:
            attribute, rdn = der_read(rdn, SEQUENCE)
            kind, attribute = der_oid(attribute, newer)
            if not attribute:
                der_fail('invalid attribute value')
            tag, value, _, _ = der_element(attribute)
            text = name_string(tag, value, newer)
            if kind == OID_COMMON_NAME:
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
        return domain_ok(host)
    return True


def subject_alt_names(value: bytes, found_names: list) -> bool:
    """Validate a subjectAltName as Go's parseSANExtension, adding (kind, data) of each name to `found_names`;
    whether it held a name Go parses."""
    names, _ = der_read(value, SEQUENCE)
    found = False
    while names:
        tag, data, _, names = der_element(names)
        kind = tag ^ 0x80
        found_names.append((kind, data))
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


def _reverse_labels(domain: str) -> list[str] | None:
    """Go's domainToReverseLabels, or None."""
    if not domain_ok(domain):
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


def names_within_constraints(names: list[tuple[int, bytes]], constraints: dict) -> bool:
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


def name_constraints_extension(value: bytes, newer: list, constraints: dict) -> bool:
    """Validate nameConstraints as Go's parseNameConstraintsExtension, filling `constraints` (GeneralName kind:
    (permitted, excluded)); whether it holds a form Go does not handle."""
    top, rest = der_read(value, SEQUENCE)
    if rest:
        der_fail('invalid NameConstraints extension')
    subtrees = []
    for index, tag in enumerate((0xA0, 0xA1)):
        if der_peek(top, tag):
            content, top = der_read(top, tag)
            subtrees.append((index, content))
    if top:
        der_fail('invalid NameConstraints extension')
    if not any(content for _, content in subtrees):
        der_fail('empty name constraints extension')
    unhandled = False
    for index, trees in subtrees:
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
                constraints[tag & 0x1F][index].append(domain)
            elif tag == 0x87:
                if len(data) not in (8, 32):
                    der_fail('bad IP constraint')
                mask = data[len(data) // 2 :]
                bits = int.from_bytes(mask, 'big')
                ones = bin(bits).count('1')
                if bits != ((1 << ones) - 1) << (8 * len(mask) - ones):
                    der_fail('bad IP constraint mask')
                if len(data) == 32 and data[:12] == bytes(10) + b'\xff\xff':
                    newer.append('an IPv4-mapped IPv6 name constraint')
                constraints[7][index].append((data[: len(data) // 2], mask))
            elif tag == 0x81:
                constraint = ia5_string(data)
                if '@' in constraint:
                    if _mailbox(constraint) is None:
                        der_fail('bad rfc822Name constraint')
                elif not domain_ok(constraint[1:] if constraint.startswith('.') else constraint):
                    der_fail('bad rfc822Name constraint')
                constraints[1][index].append(constraint)
            else:
                unhandled = True
    return unhandled
