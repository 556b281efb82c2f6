"""A strict DER reader for what the verdict needs from an X.509 certificate.

It stands in for cryptography, whose import alone costs the Agent 14 MB; like Go's x509.ParseCertificate it refuses
anything that is not well-formed DER of the Certificate structure, so a certificate the apiserver would refuse is
never counted as valid. Checked against cryptography by tests/test_certificate_parser.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class BundleCertificate:
    subject: str
    is_ca: bool
    not_before: float  # POSIX timestamps
    not_after: float


OID_BASIC_CONSTRAINTS = '2.5.29.19'
OID_COMMON_NAME = '2.5.4.3'
OID_RSA = '1.2.840.113549.1.1.1'
OID_EC = '1.2.840.10045.2.1'
# The named curves Go accepts, as (p, b) of y^2 = x^3 - 3x + b mod p: P-224, P-256, P-384, P-521. Go refuses any
# other curve and a point off its curve.
EC_CURVES = {
    '1.3.132.0.33': (2**224 - 2**96 + 1, 0xB4050A850C04B3ABF54132565044B0B7D7BFD8BA270B39432355FFB4),
    '1.2.840.10045.3.1.7': (
        2**256 - 2**224 + 2**192 + 2**96 - 1,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    ),
    '1.3.132.0.34': (
        2**384 - 2**128 - 2**96 + 2**32 - 1,
        0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
    ),
    '1.3.132.0.35': (
        2**521 - 1,
        0x0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00,
    ),
}
OID_SUBJECT_ALT_NAME = '2.5.29.17'
OID_ISSUER_ALT_NAME = '2.5.29.18'
OID_PRIVATE_KEY_USAGE_PERIOD = '2.5.29.16'
OID_KEY_USAGE = '2.5.29.15'
OID_EXTENDED_KEY_USAGE = '2.5.29.37'
OID_SUBJECT_KEY_ID = '2.5.29.14'
OID_AUTHORITY_KEY_ID = '2.5.29.35'
PRINTABLE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")
# The string types Go reads in names (others make x509.ParseCertificate fail), with their decodings.
STRING_TAGS = {0x0C: 'utf-8', 0x13: 'ascii', 0x16: 'ascii', 0x14: 'latin-1', 0x1E: 'utf-16-be', 0x12: 'ascii'}
OID_ED25519 = '1.3.101.112'
# Extensions Go parses into fields: a value that is not a SEQUENCE of SEQUENCEs makes parsing fail.
OIDS_SEQUENCE_OF_SEQUENCES = frozenset(
    {'2.5.29.31', '2.5.29.32', '1.3.6.1.5.5.7.1.1'}  # CRL distribution points, certificate policies, AIA
)
OID_NAME_CONSTRAINTS = '2.5.29.30'
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


def _der_elements(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) pairs that exactly fill `data`, or ValueError for anything but minimal definite DER."""
    elements = []
    i, n = 0, len(data)
    while i < n:
        tag = data[i]
        if tag & 0x1F == 0x1F or i + 1 >= n:
            raise ValueError('bad DER tag')
        length = data[i + 1]
        i += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or i + count > n or data[i] == 0:
                raise ValueError('bad DER length')
            length = int.from_bytes(data[i : i + count], 'big')
            if length < 0x80:
                raise ValueError('non-minimal DER length')
            i += count
        if i + length > n:
            raise ValueError('truncated DER')
        elements.append((tag, data[i : i + length]))
        i += length
    return elements


def _expect(element: tuple[int, bytes], tag: int) -> bytes:
    if element[0] != tag:
        raise ValueError(f'expected DER tag {tag:#x}, got {element[0]:#x}')
    return element[1]


def _der_integer(content: bytes) -> int:
    if not content or (len(content) > 1 and (content[0], content[1] & 0x80) in ((0, 0), (0xFF, 0x80))):
        raise ValueError('bad DER integer')
    return int.from_bytes(content, 'big', signed=True)


def _oid(content: bytes) -> str:
    if not content or content[-1] & 0x80:
        raise ValueError('bad OID')
    arcs, value = [], 0
    for i, byte in enumerate(content):
        if value == 0 and byte == 0x80 and (i == 0 or not content[i - 1] & 0x80):
            raise ValueError('non-minimal OID arc')
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return '.'.join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def _time(element: tuple[int, bytes]) -> float:
    tag, content = element
    text = content.decode('ascii', 'replace')
    if tag == UTC_TIME and len(text) == 13:
        year = int(text[:2]) if text[:2].isdigit() else -1
        text = ('19' if year >= 50 else '20') + text
    elif tag != GENERALIZED_TIME or len(text) != 15:
        raise ValueError('bad certificate time')
    if not text.endswith('Z') or not text[:-1].isdigit():
        raise ValueError('bad certificate time')
    fields = (text[0:4], text[4:6], text[6:8], text[8:10], text[10:12], text[12:14])
    return datetime(*map(int, fields), tzinfo=UTC).timestamp()  # ValueError for an impossible date


def _string(element: tuple[int, bytes]) -> str:
    tag, content = element
    if tag not in STRING_TAGS:
        raise ValueError('unsupported string type in name')
    if (tag == 0x13 and not PRINTABLE.issuperset(content)) or (tag == 0x12 and not set(content) <= set(b'0123456789 ')):
        raise ValueError('bad PrintableString or NumericString')
    if tag == 0x1E and len(content) % 2:
        raise ValueError('bad BMPString')
    return content.decode(STRING_TAGS[tag])  # strict: UnicodeError when malformed


def _bit_string(element: tuple[int, bytes]) -> bytes:
    content = _expect(element, BIT_STRING)
    if not content or content[0] > 7 or (len(content) == 1 and content[0]) or content[-1] & ((1 << content[0]) - 1):
        raise ValueError('bad BIT STRING')
    return content


def _common_name(name: bytes) -> str:
    common_name = ''
    for rdn in _der_elements(name):
        attributes = _der_elements(_expect(rdn, SET))
        if not attributes:
            raise ValueError('empty relative distinguished name')
        for attribute in attributes:
            kind, value = _der_elements(_expect(attribute, SEQUENCE))
            text = _string(value)
            if _oid(_expect(kind, OID)) == OID_COMMON_NAME:
                common_name = text
    return f'CN={common_name}' if common_name else '<no common name>'


def _well_formed(content: bytes) -> None:
    """Every constructed element, at any depth, holds well-formed DER."""
    for tag, inner in _der_elements(content):
        if tag & 0x20:
            _well_formed(inner)


def _extensions_say_ca(content: bytes) -> bool:
    """Validate the [3] extensions; whether basicConstraints says CA:TRUE."""
    (extensions,) = _der_elements(content)
    is_ca = False
    seen = set()
    for extension in _der_elements(_expect(extensions, SEQUENCE)):
        parts = _der_elements(_expect(extension, SEQUENCE))
        if len(parts) not in (2, 3) or (len(parts) == 3 and _expect(parts[1], BOOLEAN) != b'\xff'):
            raise ValueError('bad extension')
        oid = _oid(_expect(parts[0], OID))
        if oid in seen:
            raise ValueError('duplicate extension')
        seen.add(oid)
        is_ca = _check_extension(oid, _expect(parts[-1], OCTET_STRING)) or is_ca
    return is_ca


def _check_extension(oid: str, value: bytes) -> bool:
    """Validate the extensions Go parses; returns whether basicConstraints says CA:TRUE."""
    (element,) = _der_elements(value)
    _well_formed(value)
    if oid == OID_BASIC_CONSTRAINTS:
        constraints = _der_elements(_expect(element, SEQUENCE))
        is_ca = bool(constraints) and constraints[0][0] == BOOLEAN
        if is_ca:
            if constraints[0][1] != b'\xff':
                raise ValueError('bad basicConstraints')
            constraints = constraints[1:]
        if len(constraints) > 1 or (constraints and _der_integer(_expect(constraints[0], INTEGER)) < 0):
            raise ValueError('bad basicConstraints')
        return is_ca
    if oid in (OID_SUBJECT_ALT_NAME, OID_ISSUER_ALT_NAME):
        names = _der_elements(_expect(element, SEQUENCE))
        if not names or any(tag & 0x1F > 8 or tag & 0xC0 != 0x80 for tag, _ in names):
            raise ValueError('bad subjectAltName')
        for tag, content in names:
            if tag in (0x81, 0x82, 0x86):  # rfc822Name, dNSName, URI: IA5String
                content.decode('ascii')
            elif tag == 0x87 and len(content) not in (4, 16):
                raise ValueError('bad IP address in subjectAltName')
    elif oid == OID_KEY_USAGE:
        _bit_string(element)
    elif oid in OIDS_SEQUENCE_OF_SEQUENCES:
        for item in _der_elements(_expect(element, SEQUENCE)):
            _expect(item, SEQUENCE)
    elif oid == OID_NAME_CONSTRAINTS:
        _expect(element, SEQUENCE)
    elif oid == OID_PRIVATE_KEY_USAGE_PERIOD and any(
        tag not in (0x80, 0x81) for tag, _ in _der_elements(_expect(element, SEQUENCE))
    ):
        raise ValueError('bad privateKeyUsagePeriod')
    elif oid == OID_EXTENDED_KEY_USAGE:
        for usage in _der_elements(_expect(element, SEQUENCE)):
            _oid(_expect(usage, OID))
    elif oid == OID_SUBJECT_KEY_ID:
        _expect(element, OCTET_STRING)
    elif oid == OID_AUTHORITY_KEY_ID and any(
        tag not in (0x80, 0xA1, 0x82) for tag, _ in _der_elements(_expect(element, SEQUENCE))
    ):
        raise ValueError('bad authorityKeyIdentifier')
    return False


def _algorithm(element: tuple[int, bytes]) -> bytes:
    parts = _der_elements(_expect(element, SEQUENCE))
    if not 1 <= len(parts) <= 2:
        raise ValueError('bad algorithm identifier')
    _oid(_expect(parts[0], OID))
    return element[1]


def _check_public_key(spki: bytes) -> None:
    algorithm, key = _der_elements(spki)
    _algorithm(algorithm)
    algorithm = _der_elements(algorithm[1])
    key = _bit_string(key)
    if key[0] != 0:
        raise ValueError('bad public key')
    kind = _oid(_expect(algorithm[0], OID))
    if kind == OID_RSA:
        if algorithm[1:] != [(0x05, b'')]:
            raise ValueError('RSA key without NULL parameters')
        (rsa_key,) = _der_elements(key[1:])
        modulus, exponent = _der_elements(_expect(rsa_key, SEQUENCE))
        if _der_integer(_expect(modulus, INTEGER)) <= 0 or _der_integer(_expect(exponent, INTEGER)) <= 1:
            raise ValueError('bad RSA public key')
    elif kind == OID_EC:
        curve = EC_CURVES.get(_oid(_expect(algorithm[1], OID))) if len(algorithm) == 2 else None
        if curve is None:
            raise ValueError('unsupported elliptic curve')
        p, b = curve
        size = (p.bit_length() + 7) // 8
        if len(key) != 2 + 2 * size or key[1] != 0x04:
            raise ValueError('bad EC public key')
        x, y = int.from_bytes(key[2 : 2 + size], 'big'), int.from_bytes(key[2 + size :], 'big')
        if x >= p or y >= p or (y * y - (x * x * x - 3 * x + b)) % p:
            raise ValueError('EC public key is not on its curve')
    elif kind != OID_ED25519 or len(algorithm) != 1 or len(key) != 33:
        raise ValueError('unsupported public key algorithm')  # a CA whose key Go cannot use verifies nothing


def parse_certificate(der: bytes) -> BundleCertificate:
    """What the verdict needs from one DER certificate; ValueError when it is not a well-formed certificate."""
    try:
        return _parse_certificate(der)
    except (IndexError, TypeError, UnicodeError, OverflowError) as e:  # malformed input reaching a lookup or decode
        raise ValueError(f'malformed certificate: {e}') from None


def _parse_certificate(der: bytes) -> BundleCertificate:
    (certificate,) = _der_elements(der) or [(0, b'')]
    tbs, signature_algorithm, signature = _der_elements(_expect(certificate, SEQUENCE))
    outer_algorithm = _algorithm(signature_algorithm)
    if _bit_string(signature)[0] != 0:
        raise ValueError('bad signature')
    fields = _der_elements(_expect(tbs, SEQUENCE))
    version = 0
    if fields and fields[0][0] == 0xA0:
        (version_element,) = _der_elements(fields.pop(0)[1])
        version = _der_integer(_expect(version_element, INTEGER))
        if version not in (1, 2):  # v1 is encoded by omission
            raise ValueError('bad certificate version')
    if len(fields) < 6:
        raise ValueError('truncated certificate')
    serial, algorithm, issuer, validity, subject, spki, *optional = fields
    if _der_integer(_expect(serial, INTEGER)) < 0:
        raise ValueError('negative serial number')
    if _algorithm(algorithm) != outer_algorithm:
        raise ValueError('inner and outer signature algorithms differ')
    _common_name(_expect(issuer, SEQUENCE))
    times = _der_elements(_expect(validity, SEQUENCE))
    if len(times) != 2:
        raise ValueError('bad validity')
    not_before, not_after = map(_time, times)
    _check_public_key(_expect(spki, SEQUENCE))
    is_ca = extensions_read = False
    for tag, content in optional:
        if tag in (0x81, 0x82) and version >= 1 and not extensions_read:  # issuer/subject unique IDs
            _bit_string((BIT_STRING, content))
            continue
        if tag != 0xA3 or version != 2 or extensions_read:
            raise ValueError('unexpected data in certificate')
        extensions_read = True
        is_ca = _extensions_say_ca(content)
    return BundleCertificate(
        subject=_common_name(_expect(subject, SEQUENCE)), is_ca=is_ca, not_before=not_before, not_after=not_after
    )
