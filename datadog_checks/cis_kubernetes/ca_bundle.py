"""What a client CA file holds: its PEM certificate blocks, parsed."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from .certificates import BundleCertificate, parse_certificate

# Go's pem.Decode: a block is BEGIN/END lines of the same type; text around and between blocks is ignored.
PEM_BLOCK = re.compile(rb'-----BEGIN ([^\r\n-]*)-----\r?\n(.*?)-----END \1-----', re.DOTALL)


@dataclass(frozen=True)
class CaBundle:
    certificates: tuple[BundleCertificate, ...]
    unparseable: int  # CERTIFICATE blocks that do not parse: the apiserver refuses to start on them

    @property
    def ca_certificates(self) -> tuple[BundleCertificate, ...]:
        return tuple(cert for cert in self.certificates if cert.is_ca)


def ca_bundle_from_pem(data: bytes) -> CaBundle:
    certificates = []
    unparseable = 0
    for block_type, body in PEM_BLOCK.findall(data):
        if block_type != b'CERTIFICATE':
            continue
        try:
            der = base64.b64decode(b''.join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            continue  # pem.Decode skips a block whose body is not base64
        try:
            certificates.append(parse_certificate(der))
        except ValueError:
            unparseable += 1
    return CaBundle(certificates=tuple(certificates), unparseable=unparseable)
