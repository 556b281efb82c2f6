"""Certificates made on the spot for tests and the demo: CAs, leaves, bundles, with any validity window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_KEY = ec.generate_private_key(ec.SECP256R1())  # one key signs everything: keeps certificate making fast


def certificate(
    common_name: str = 'kubernetes-ca',
    *,
    is_ca: bool | None = True,
    days_valid: float = 3650,
    starts_in_days: float = -1,
    key=None,
    path_length: int | None = None,
    extensions: tuple = (),
    organization: str | None = None,
    serial: int | None = None,
    now: datetime | None = None,
) -> x509.Certificate:
    """A self-signed certificate valid from now + `starts_in_days` for `days_valid` days.

    `is_ca`: True for basicConstraints CA:TRUE, False for CA:FALSE, None for no basicConstraints at all. `key`: the
    private key (by default one shared EC P-256 key); `extensions`: more, not critical. `serial` and `now` (default:
    random, the clock) make the same bytes every time, with a fixed key: ECDSA signs deterministically (RFC 6979).
    """
    key = key or _KEY
    now = now or datetime.now(UTC)
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    name = x509.Name(attributes)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now + timedelta(days=starts_in_days))
        .not_valid_after(now + timedelta(days=starts_in_days + days_valid))
    )
    if is_ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_length), critical=True)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    return builder.sign(key, hashes.SHA256())


def pem(*certificates: x509.Certificate) -> bytes:
    return b''.join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def private_key_pem() -> bytes:
    return _KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def valid_ca(days_left: float = 3650) -> bytes:
    """A PEM bundle with one CA certificate expiring in `days_left` days."""
    return pem(certificate(days_valid=days_left + 1, starts_in_days=-1))
