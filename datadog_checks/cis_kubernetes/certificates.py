"""An X.509 reader that accepts and refuses exactly what kube-apiserver's Go does, and says which certificates can
sign a client certificate.

kube-apiserver parses each CERTIFICATE block of --client-ca-file with Go's crypto/x509.ParseCertificate: this module
mirrors crypto/x509/parser.go of the Go that builds the supported Kubernetes releases (docs/go-versions.md) and the
cryptobyte DER reader under it, rule for rule (lenient where Go is lenient: `&` and `*` in a PrintableString, an
unknown public key algorithm, explicit defaults, empty names, trailing data inside most structures).
Which certificates can sign follows Go's CheckSignatureFrom (x509.go) and what Verify asks of a root (verify.go).
It stands in for cryptography, whose import alone costs the Agent 14 MB. Proven against Go by
tests/test_x509_oracle.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from .der import (
    BOOLEAN,
    INTEGER,
    OCTET_STRING,
    SEQUENCE,
    der_bit_string,
    der_boolean,
    der_element,
    der_fail,
    der_int64,
    der_integer,
    der_oid,
    der_peek,
    der_read,
    der_right_align,
    der_time,
)
from .x509_names import common_name, name_constraints_extension, subject_alt_names

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
OID_AUTHORITY_INFO_ACCESS = (1, 3, 6, 1, 5, 5, 7, 1, 1)
OID_EKU_ANY = (2, 5, 29, 37, 0)
OID_EKU_CLIENT_AUTH = (1, 3, 6, 1, 5, 5, 7, 3, 2)
# Why a certificate cannot sign a client certificate that kube-apiserver accepts, as the messages say it.
NOT_CA_V3 = 'version 3 without basicConstraints CA:TRUE'
CA_FALSE = 'basicConstraints CA:FALSE'
NO_KEY_CERT_SIGN = 'CA:TRUE but keyUsage lacks keyCertSign'
RSA_UNDER_1024 = 'an RSA key under 1024 bits'
RSA_EVEN = 'an even RSA modulus or exponent'
RSA_EXPONENT = 'an RSA exponent Go cannot verify with'
NO_CLIENT_AUTH = 'extendedKeyUsage without clientAuth'
UNHANDLED_CRITICAL = 'an unhandled critical extension'


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


def _algorithm(content: bytes) -> tuple[tuple[int, ...], bytes | None]:
    """(OID, parameters element or None), as Go's parseAI."""
    algorithm, rest = der_oid(content)
    if not rest:
        return algorithm, None
    _, _, params, _ = der_element(rest)
    return algorithm, params


@dataclass
class _Extensions:
    basic_constraints: bool = False
    is_ca: bool = False
    key_usage: int = 0
    client_auth_allowed: bool = True
    unhandled_critical: tuple[int, ...] | None = None


def _extensions(content: bytes) -> _Extensions:
    out = _Extensions()
    extensions, _ = der_read(content, SEQUENCE)
    seen = set()
    parsed = []
    while extensions:
        extension, extensions = der_read(extensions, SEQUENCE)
        oid, extension = der_oid(extension)
        critical = False
        if der_peek(extension, BOOLEAN):
            critical, extension = der_boolean(extension)
        value, _ = der_read(extension, OCTET_STRING)
        if oid in seen:
            der_fail('certificate contains duplicate extensions')
        seen.add(oid)
        parsed.append((oid, critical, value))
    for oid, critical, value in parsed:
        unhandled = False
        if len(oid) == 4 and oid[:3] == (2, 5, 29):
            number = oid[3]
            if number == 15:
                body, padding, _ = der_bit_string(value)
                length = len(body) * 8 - padding
                out.key_usage = sum(1 << i for i in range(min(9, length)) if body[i // 8] >> (7 - i % 8) & 1)
            elif number == 19:
                constraints, _ = der_read(value, SEQUENCE)
                out.is_ca = False
                if der_peek(constraints, BOOLEAN):
                    out.is_ca, constraints = der_boolean(constraints)
                if der_peek(constraints, INTEGER):
                    path_length, _ = der_int64(constraints)
                    if path_length < 0:
                        der_fail('BasicConstraints with a negative pathLenConstraint')
                out.basic_constraints = True
            elif number == 17:
                unhandled = not subject_alt_names(value)
            elif number == 30:
                unhandled = name_constraints_extension(value)
            elif number == 31:
                _crl_distribution_points(value)
            elif number == 35:
                key_id, _ = der_read(value, SEQUENCE)
                if der_peek(key_id, 0x80):
                    der_read(key_id, 0x80)
                if critical:
                    der_fail('authority key identifier incorrectly marked critical')
            elif number == 37:
                usages, _ = der_read(value, SEQUENCE)
                known = []
                while usages:
                    usage, usages = der_oid(usages)
                    known.append(usage)
                out.client_auth_allowed = not known or OID_EKU_ANY in known or OID_EKU_CLIENT_AUTH in known
            elif number == 14:
                der_read(value, OCTET_STRING)
                if critical:
                    der_fail('subject key identifier incorrectly marked critical')
            elif number == 32:
                policies, _ = der_read(value, SEQUENCE)
                while policies:
                    policy, policies = der_read(policies, SEQUENCE)
                    der_oid(policy)
            else:
                unhandled = True
        elif oid == OID_AUTHORITY_INFO_ACCESS:
            accesses, _ = der_read(value, SEQUENCE)
            while accesses:
                access, accesses = der_read(accesses, SEQUENCE)
                _, access = der_oid(access)
                if der_peek(access, 0x86):
                    der_read(access, 0x86)
            if critical:
                der_fail('authority info access incorrectly marked critical')
        else:
            unhandled = True
        if critical and unhandled and out.unhandled_critical is None:
            out.unhandled_critical = oid
    return out


def _crl_distribution_points(value: bytes) -> None:
    points, _ = der_read(value, SEQUENCE)
    while points:
        point, points = der_read(points, SEQUENCE)
        if not der_peek(point, 0xA0):
            continue
        name, _ = der_read(point, 0xA0)
        full, _ = der_read(name, 0xA0)
        while full and der_peek(full, 0x86):
            _, full = der_read(full, 0x86)


def _public_key(algorithm: str | None, params: bytes | None, key: bytes) -> tuple[str, str | None]:
    """Validate the key as Go's parsePublicKey; (its description, why Go's RSA verification refuses it or None)."""
    if algorithm == RSA:
        if params != b'\x05\x00':
            der_fail('RSA key missing NULL parameters')
        rsa_key, _ = der_read(key, SEQUENCE)
        modulus, rsa_key = der_integer(rsa_key)
        exponent, _ = der_int64(rsa_key)
        if modulus <= 0 or exponent <= 0:
            der_fail('bad RSA public key')
        if not 2 <= exponent <= 2**31 - 1:  # rsa.VerifyPKCS1v15's checkPub, every Go version
            return RSA, RSA_EXPONENT
        if not modulus & 1 or not exponent & 1:
            return RSA, RSA_EVEN
        return RSA, RSA_UNDER_1024 if modulus.bit_length() < 1024 else None
    if algorithm == ECDSA:
        curve_oid, _ = der_oid(params or b'')
        if curve_oid not in EC_CURVES:
            der_fail('unsupported elliptic curve')
        name, p, b = EC_CURVES[curve_oid]
        size = (p.bit_length() + 7) // 8
        if len(key) != 1 + 2 * size or key[0] != 4:
            der_fail('failed to unmarshal elliptic curve point')
        x, y = int.from_bytes(key[1 : 1 + size], 'big'), int.from_bytes(key[1 + size :], 'big')
        if x >= p or y >= p or (y * y - (x * x * x - 3 * x + b)) % p:
            der_fail('failed to unmarshal elliptic curve point')
        return f'ECDSA {name}', None
    if algorithm == ED25519:
        if params is not None or len(key) != 32:
            der_fail('bad Ed25519 key')
        return ED25519, None
    if algorithm == DSA:
        y, _ = der_integer(key)
        dsa_params, _ = der_read(params or b'', SEQUENCE)
        p, dsa_params = der_integer(dsa_params)
        q, dsa_params = der_integer(dsa_params)
        g, _ = der_integer(dsa_params)
        if min(y, p, q, g) <= 0:
            der_fail('zero or negative DSA parameter')
        return DSA, None
    return '', None


def parse_certificate(der: bytes) -> BundleCertificate:
    """One DER certificate as Go's x509.ParseCertificate reads it; ValueError when Go refuses it."""
    try:
        return _parse_certificate(der)
    except (IndexError, TypeError, UnicodeError, OverflowError) as e:  # malformed input reaching a lookup or decode
        raise ValueError(f'malformed certificate: {e}') from None


def _parse_certificate(der: bytes) -> BundleCertificate:
    certificate, trailing = der_read(der, SEQUENCE)
    if trailing:
        der_fail('trailing data')
    tbs, certificate = der_read(certificate, SEQUENCE)
    version = 0
    if der_peek(tbs, 0xA0):
        explicit, tbs = der_read(tbs, 0xA0)
        version, extra = der_int64(explicit)
        if extra:
            der_fail('malformed version')
    if version < 0 or version > 2:
        der_fail('invalid version')
    version += 1
    serial, tbs = der_integer(tbs)
    if serial < 0:
        der_fail('negative serial number')
    inner, tbs = der_read(tbs, SEQUENCE)
    outer, certificate = der_read(certificate, SEQUENCE)
    if inner != outer:
        der_fail("inner and outer signature algorithm identifiers don't match")
    _algorithm(inner)
    _, _, issuer, tbs = der_element(tbs)
    common_name(issuer)
    validity, tbs = der_read(tbs, SEQUENCE)
    not_before, validity = der_time(validity)
    not_after, _ = der_time(validity)
    _, _, subject_element, tbs = der_element(tbs)
    subject = common_name(subject_element)
    spki, tbs = der_read(tbs, SEQUENCE)
    key_algorithm, spki = der_read(spki, SEQUENCE)
    key_oid, params = _algorithm(key_algorithm)
    key, padding, _ = der_bit_string(spki)
    algorithm = PUBLIC_KEY_ALGORITHMS.get(key_oid)
    public_key, key_problem = _public_key(algorithm, params, der_right_align(key, padding))
    extensions = _Extensions()
    if version > 1:
        for tag in (0x81, 0x82):
            if der_peek(tbs, tag):
                _, tbs = der_read(tbs, tag)
        if version == 3 and der_peek(tbs, 0xA3):
            content, tbs = der_read(tbs, 0xA3)
            extensions = _extensions(content)
    der_bit_string(certificate)
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
    return None
