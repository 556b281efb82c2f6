"""DER names (pure): the subjects of the certificates in a PEM bundle exactly as encoded (Go's RawSubject, what
crypto/tls advertises in a CertificateRequest), and a DistinguishedName shown for messages.

Only the subject is needed, so this walks the certificate's outer structure with der.py's reader, without
certificates.py's full parse.
"""

from __future__ import annotations

from .ca_bundle import pem_blocks
from .der import SEQUENCE, SET, der_element, der_oid, der_peek, der_read

_ATTRIBUTE_NAMES = {
    '2.5.4.3': 'CN',
    '2.5.4.6': 'C',
    '2.5.4.7': 'L',
    '2.5.4.8': 'ST',
    '2.5.4.10': 'O',
    '2.5.4.11': 'OU',
    '2.5.4.5': 'SERIALNUMBER',
    '0.9.2342.19200300.100.1.25': 'DC',
    '1.2.840.113549.1.9.1': 'emailAddress',
}


def certificate_subject_der(der: bytes) -> bytes:
    """The certificate's subject Name exactly as encoded (tag and length included), as Go's RawSubject."""
    certificate, _ = der_read(der, SEQUENCE)
    fields, _ = der_read(certificate, SEQUENCE)  # tbsCertificate
    if der_peek(fields, 0xA0):  # [0] version
        fields = der_element(fields)[3]
    for _ in range(4):  # serial, signature, issuer, validity
        fields = der_element(fields)[3]
    tag, _, subject, _ = der_element(fields)
    if tag != SEQUENCE:
        raise ValueError('not a certificate')
    return subject


def pem_certificate_subjects(data: bytes) -> tuple[bytes, ...]:
    """The subject of every certificate in a PEM bundle, in file order (Go's CertPool keeps every certificate)."""
    subjects = []
    for block in pem_blocks(data):  # as Go's pem.Decode frames it, in linear time
        if block.type != b'CERTIFICATE' or block.has_headers:
            continue
        try:
            subject = certificate_subject_der(block.data)
        except ValueError:
            continue  # Go's AppendCertsFromPEM skips what does not parse
        if subject not in subjects:
            subjects.append(subject)
    return tuple(subjects)


def display_name(name: bytes) -> str:
    """A DistinguishedName for messages, most significant attribute first (CN=kubernetes-ca,O=example)."""
    try:
        rdns, _ = der_read(name, SEQUENCE)
        shown = []
        while rdns:
            rdn, rdns = der_read(rdns, SET)
            while rdn:
                attribute, rdn = der_read(rdn, SEQUENCE)
                arcs, attribute = der_oid(attribute)
                value_tag, value, _, _ = der_element(attribute)
                oid = '.'.join(map(str, arcs))
                codec = 'utf-16-be' if value_tag == 0x1E else 'utf-8'
                shown.append(f'{_ATTRIBUTE_NAMES.get(oid, oid)}={value.decode(codec, "replace")}')
        return ','.join(reversed(shown)) or '(empty name)'
    except (ValueError, IndexError):
        return f'(undecodable name, {len(name)} bytes)'
