"""What a client CA file holds, read as kube-apiserver reads it.

kube-apiserver loads --client-ca-file with client-go's cert.ParseCertsPEM (k8s.io/client-go/util/cert/pem.go, through
dynamiccertificates' NewPoolFromBytes): Go's encoding/pem Decode in a loop, skipping blocks that are not
"CERTIFICATE" or that carry headers, x509.ParseCertificate on each remaining block, the first failure failing the
load, and no certificate at all an error ("data does not contain any valid RSA or ECDSA certificates").
The PEM framing below is pem.Decode of the Go that builds the supported Kubernetes releases (docs/go-versions.md),
rule for rule: the first END line, then the last BEGIN line before it (Go rewrote Decode so in 1.25.2 against
quadratic inputs; tests/test_x509_oracle.py compares it with the pinned Go).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from .certificates import BundleCertificate, parse_certificate

BEGIN = b'-----BEGIN '
END_WITH_NEWLINE = b'\n-----END '
DASHES = b'-----'
# Each byte's part in a base64 body as Go decodes it: A alphabet, W skipped (spaces and tabs removed by pem, CR and
# LF skipped by base64), P padding, X anything else (the block does not decode).
_B64_CLASSES = bytes(
    ord('A')
    if chr(b).isascii() and (chr(b).isalnum() or chr(b) in '+/')
    else ord('W')
    if b in b' \t\r\n'
    else ord('P')
    if b == ord('=')
    else ord('X')
    for b in range(256)
)


@dataclass(frozen=True)
class CaBundle:
    certificates: tuple[BundleCertificate, ...]
    unparseable: int  # CERTIFICATE blocks that do not parse: the apiserver refuses to load the file
    first_error: str = ''  # why the first of them does not parse

    @property
    def ca_certificates(self) -> tuple[BundleCertificate, ...]:
        """The certificates that can sign a client certificate kube-apiserver accepts."""
        return tuple(cert for cert in self.certificates if cert.is_ca)


@dataclass(frozen=True)
class PemBlock:
    type: bytes
    has_headers: bool
    data: bytes


class _Pem:
    """Go's pem.Decode over one buffer, every position found once: the same blocks in linear time."""

    def __init__(self, data: bytes):
        self.data = data
        self.n = len(data)
        self.classes = data.translate(_B64_CLASSES)

    def line_end(self, i: int) -> tuple[int, int]:
        """Go's getLine at i: (end of the line without CR and trailing spaces/tabs, start of the next line)."""
        newline = self.data.find(b'\n', i)
        if newline < 0:
            end = nxt = self.n
        else:
            nxt = newline + 1
            end = newline - 1 if newline > i and self.data[newline - 1] == 0x0D else newline
        return i + len(self.data[i:end].rstrip(b' \t')), nxt

    def base64_ok(self, start: int, end: int) -> bool:
        """Go's base64.StdEncoding.Decode succeeds on data[start:end] with spaces and tabs removed."""
        if start >= end:
            return True
        if self.classes.find(b'X', start, end) >= 0:
            return False
        pads = self.classes.count(b'P', start, end)
        letters = self.classes.count(b'A', start, end)
        if pads == 0:
            return letters % 4 == 0
        if pads > 2 or self.classes.rfind(b'A', start, end) > self.classes.find(b'P', start, end):
            return False
        return letters % 4 == 4 - pads

    def end_line_blank(self, i: int) -> bool:
        """What follows the END line's dashes is only spaces and tabs to the end of the line (Go's getLine)."""
        end, _ = self.line_end(i)
        return end == i

    def decode(self, rest: int) -> tuple[PemBlock | None, int]:
        """pem.Decode(data[rest:]): (block, where the rest starts) or (None, -1). The first END line, then the last
        BEGIN line before it, which must start a line; indexes are relative to rest, as in Go."""
        data = self.data
        end_trailer = 0
        while True:
            if end_trailer < 0 or end_trailer > self.n - rest:
                return None, -1
            rest += end_trailer
            end = data.find(END_WITH_NEWLINE, rest)
            if end < 0:
                return None, -1
            end -= rest
            end_trailer = end + len(END_WITH_NEWLINE)
            begin = data.rfind(BEGIN, rest, rest + end)
            if begin < 0 or (begin > rest and data[begin - 1] != 0x0A):
                continue
            begin -= rest
            rest += begin + len(BEGIN)
            end -= begin + len(BEGIN)
            end_trailer -= begin + len(BEGIN)
            type_end, nxt = self.line_end(rest)
            consumed = nxt - rest
            end, end_trailer = end - consumed, end_trailer - consumed
            type_start, rest = rest, nxt
            if not data.startswith(DASHES, type_end - len(DASHES), type_end) or type_end - type_start < len(DASHES):
                continue
            block_type = data[type_start : type_end - len(DASHES)]
            has_headers = False
            while True:
                if rest >= self.n:
                    return None, -1
                line_end, nxt = self.line_end(rest)
                if data.find(b':', rest, line_end) < 0:
                    break
                has_headers = True
                end, end_trailer = end - (nxt - rest), end_trailer - (nxt - rest)
                rest = nxt
            if has_headers and end < 0:
                continue
            trailer = rest + end_trailer
            after = trailer + len(block_type) + len(DASHES)
            if after > self.n or not (
                data.startswith(block_type, trailer) and data.startswith(DASHES, after - len(DASHES))
            ):
                continue
            if not self.end_line_blank(after):
                continue
            body = b''
            if end > 0:
                if not self.base64_ok(rest, rest + end):
                    continue
                body = base64.b64decode(data[rest : rest + end].translate(None, b' \t\r\n'))
            _, nxt = self.line_end(rest + end + len(END_WITH_NEWLINE) - 1)
            return PemBlock(block_type, has_headers, body), nxt


def pem_blocks(data: bytes) -> list[PemBlock]:
    """Every block Go's pem.Decode finds when called in a loop on its rest, as ParseCertsPEM does."""
    reader = _Pem(data)
    blocks = []
    rest = 0
    while rest < len(data):
        block, rest = reader.decode(rest)
        if block is None:
            break
        blocks.append(block)
    return blocks


def ca_bundle_from_pem(data: bytes) -> CaBundle:
    """The file as ParseCertsPEM reads it: the certificates of CERTIFICATE blocks without headers, and those Go
    refuses (any one of which fails the load)."""
    certificates, errors = [], []
    for block in pem_blocks(data):
        if block.type != b'CERTIFICATE' or block.has_headers:
            continue  # ParseCertsPEM uses only CERTIFICATE blocks without headers
        try:
            certificates.append(parse_certificate(block.data))
        except ValueError as e:
            errors.append(str(e))
    return CaBundle(certificates=tuple(certificates), unparseable=len(errors), first_error=errors[0] if errors else '')
