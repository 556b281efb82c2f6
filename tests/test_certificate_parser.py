"""The check's own X.509 reader agrees with cryptography on valid certificates, and with Go on corrupted ones."""

from __future__ import annotations

import warnings

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datadog_checks.cis_kubernetes.certificates import parse_certificate
from devtools import certs
from tests import test_x509_oracle

go = test_x509_oracle.go  # the pinned Go's oracle fixture
RSA_KEY = test_x509_oracle.RSA_KEY  # committed keys: the same certificates, and so the same mutations, every run
EC_KEYS = [test_x509_oracle.ORACLE_KEYS[name] for name in ('P256', 'P384', 'P521', 'P224')]


def build(key, *, name='ca', ca=True, path_length=None, days=(-1, 365), extra=()):
    return certs.certificate(
        name,
        is_ca=ca,
        key=key,
        path_length=path_length,
        starts_in_days=days[0],
        days_valid=days[1] - days[0],
        extensions=tuple(extra),
        organization='org',
        serial=0x5EED,
        now=test_x509_oracle.NOW_DATETIME,
    )


def reference(der: bytes):
    """cryptography's reading of the same bytes, or None when it refuses them."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try:
            cert = x509.load_der_x509_certificate(der)
            try:
                is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
            except x509.ExtensionNotFound:
                is_ca = False
            try:
                cert.public_key()
            except ValueError as e:
                if 'e must be odd' not in str(e):  # OpenSSL refuses an even RSA exponent; Go does not
                    raise
            return is_ca, cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()
        except Exception:
            return None


VARIANTS = {
    'rsa ca': lambda: build(RSA_KEY),
    'p256 ca': lambda: build(EC_KEYS[0]),
    'p384 leaf': lambda: build(EC_KEYS[1], ca=False),
    'p521 no basic constraints': lambda: build(EC_KEYS[2], ca=None),
    'ca with path length': lambda: build(EC_KEYS[0], path_length=2),
    'generalized time after 2049': lambda: build(EC_KEYS[0], days=(-1, 365 * 40)),
    'with SAN and key usage': lambda: build(
        EC_KEYS[0],
        extra=[
            x509.SubjectAlternativeName([x509.DNSName('kubernetes')]),
            x509.KeyUsage(True, False, False, False, False, True, True, False, False),
        ],
    ),
    'p224 ca': lambda: build(EC_KEYS[3]),
    'unicode common name': lambda: build(EC_KEYS[0], name='kübernetes-ça'),
}


@pytest.mark.parametrize('variant', VARIANTS)
def test_reader_agrees_with_cryptography_on_valid_certificates(variant):
    cert = VARIANTS[variant]()
    der = certs.der(cert)
    parsed = parse_certificate(der)
    assert (parsed.is_ca, parsed.not_before, parsed.not_after) == reference(der)
    assert parsed.subject == cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value.join(['CN=', ''])


SEED_CERTIFICATES = [certs.der(VARIANTS[name]()) for name in ('rsa ca', 'p256 ca', 'with SAN and key usage')]


@st.composite
def mutated(draw):
    der = bytearray(draw(st.sampled_from(SEED_CERTIFICATES)))
    for _ in range(draw(st.integers(1, 4))):
        if not der:
            break
        position = draw(st.integers(0, len(der) - 1))
        action = draw(st.sampled_from(['flip', 'set', 'insert', 'delete', 'truncate']))
        if action == 'flip':
            der[position] ^= 1 << draw(st.integers(0, 7))
        elif action == 'set':
            der[position] = draw(st.integers(0, 255))
        elif action == 'insert':
            der.insert(position, draw(st.integers(0, 255)))
        elif action == 'delete' and len(der) > 1:
            del der[position]
        elif action == 'truncate':
            del der[position:]
    return bytes(der)


@settings(max_examples=3000, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_reader_accepts_and_refuses_exactly_what_go_does(go, der):
    """No false PASS and no false FAIL: a corrupted certificate is read exactly as Go's x509.ParseCertificate reads it.

    This compared with cryptography until the Go oracle showed Go accepts certificates cryptography refuses
    (trailing data inside structures, explicit defaults, empty RDNs): Go is what kube-apiserver runs.
    """
    test_x509_oracle.compare_exact(go, test_x509_oracle.pem(der), ())
