"""What a client CA file holds, read as kube-apiserver reads it.

kube-apiserver loads --client-ca-file with client-go's cert.ParseCertsPEM (k8s.io/client-go/util/cert/pem.go, through
dynamiccertificates' NewPoolFromBytes): Go's encoding/pem Decode in a loop, skipping blocks that are not
"CERTIFICATE" or that carry headers, x509.ParseCertificate on each remaining block, the first failure failing the
load, and no certificate at all an error ("data does not contain any valid RSA or ECDSA certificates").
The PEM framing below is Go 1.19's pem.Decode rule for rule, computed in linear time: Go 1.19 restarts its search
after a damaged block and rescans the rest of the file each time, which is quadratic on a file of BEGIN lines.
Newer Go (which current Kubernetes is built with) rewrote Decode against that, and it finds different blocks in some
damaged files; the file is read with both, and judged by what both load.
"""

from __future__ import annotations

import base64
from bisect import bisect_left
from dataclasses import dataclass, replace

from .certificates import BundleCertificate, NewerGoRefusal, parse_certificate

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
    newer_go_only: bool = False  # Go 1.19 loads the file; newer Go (current Kubernetes) does not
    framing_differs: bool = False  # Go 1.19's and newer Go's PEM readers find different blocks in it

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
        self.ends = []
        i = data.find(END_WITH_NEWLINE)
        while i >= 0:
            self.ends.append(i)
            i = data.find(END_WITH_NEWLINE, i + 1)
        self._next_begin = -1  # cache: first "\n-----BEGIN " at or after _begin_from
        self._begin_from = self.n + 1
        self._bad_before: dict[int, int] = {}
        self._line_blank: dict[int, bool] = {}

    def line_end(self, i: int) -> tuple[int, int]:
        """Go's getLine at i: (end of the line without CR and trailing spaces/tabs, start of the next line)."""
        newline = self.data.find(b'\n', i)
        if newline < 0:
            end = nxt = self.n
        else:
            nxt = newline + 1
            end = newline - 1 if newline > i and self.data[newline - 1] == 0x0D else newline
        return i + len(self.data[i:end].rstrip(b' \t')), nxt

    def begin_at_or_after(self, i: int) -> int:
        """Where the text after the next "-----BEGIN " starts: at i itself, or after a newline; -1 if none."""
        if self.data.startswith(BEGIN, i):
            return i + len(BEGIN)
        if not (self._begin_from <= i and (self._next_begin < 0 or self._next_begin >= i)):
            self._next_begin = self.data.find(b'\n' + BEGIN, i)
            self._begin_from = i
        return -1 if self._next_begin < 0 else self._next_begin + 1 + len(BEGIN)

    def base64_ok(self, start: int, end: int) -> bool:
        """Go's base64.StdEncoding.Decode succeeds on data[start:end] with spaces and tabs removed."""
        if start >= end:
            return True
        bad = self._bad_before.get(end)
        if bad is None:
            bad = self._bad_before[end] = self.classes.rfind(b'X', 0, end)
        if bad >= start:
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
        blank = self._line_blank.get(i)
        if blank is None:
            end, _ = self.line_end(i)
            blank = self._line_blank[i] = end == i
        return blank

    def decode(self, rest: int) -> tuple[PemBlock | None, int]:
        """pem.Decode(data[rest:]): (block, where the rest starts) or (None, -1)."""
        data = self.data
        while True:
            start = self.begin_at_or_after(rest)
            if start < 0:
                return None, -1
            type_end, rest = self.line_end(start)
            if not data.startswith(DASHES, type_end - len(DASHES), type_end) or type_end - start < len(DASHES):
                continue
            block_type = data[start : type_end - len(DASHES)]
            has_headers = False
            while True:
                if rest >= self.n:
                    return None, -1
                line_end, nxt = self.line_end(rest)
                if data.find(b':', rest, line_end) < 0:
                    break
                has_headers = True
                rest = nxt
            if not has_headers and data.startswith(END_WITH_NEWLINE[1:], rest):
                body_end, trailer = rest, rest + len(END_WITH_NEWLINE) - 1
            else:
                k = bisect_left(self.ends, rest)
                if k == len(self.ends):
                    continue
                body_end = self.ends[k]
                trailer = body_end + len(END_WITH_NEWLINE)
            after = trailer + len(block_type) + len(DASHES)
            if after > self.n or not (
                data.startswith(block_type, trailer) and data.startswith(DASHES, after - len(DASHES))
            ):
                continue
            if not self.end_line_blank(after):
                continue
            if not self.base64_ok(rest, body_end):
                continue
            body = data[rest:body_end].translate(None, b' \t\r\n')
            _, rest = self.line_end(body_end + len(END_WITH_NEWLINE) - 1)
            return PemBlock(block_type, has_headers, base64.b64decode(body)), rest

    def decode_newer(self, rest: int) -> tuple[PemBlock | None, int]:
        """Newer Go's pem.Decode (rewritten against quadratic inputs; checked with Go 1.27): the first END line, then
        the last BEGIN line before it, which must start a line. Indexes are relative to rest, as in Go."""
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


def pem_blocks(data: bytes, newer_go: bool = False) -> list[PemBlock]:
    """Every block Go's pem.Decode finds when called in a loop on its rest, as ParseCertsPEM does (Go 1.19's, or
    newer Go's with `newer_go`)."""
    reader = _Pem(data)
    decode = reader.decode_newer if newer_go else reader.decode
    blocks = []
    rest = 0
    while rest < len(data):
        block, rest = decode(rest)
        if block is None:
            break
        blocks.append(block)
    return blocks


def _parsed(blocks: list[PemBlock]) -> tuple[CaBundle, list[bytes]]:
    """ParseCertsPEM over these blocks: the bundle, and the DER of each certificate read."""
    certificates, ders, errors = [], [], []
    newer_only = True
    for block in blocks:
        if block.type != b'CERTIFICATE' or block.has_headers:
            continue  # ParseCertsPEM uses only CERTIFICATE blocks without headers
        try:
            certificates.append(parse_certificate(block.data))
            ders.append(block.data)
        except NewerGoRefusal as e:
            errors.append(str(e))
        except ValueError as e:
            errors.append(str(e))
            newer_only = False
    bundle = CaBundle(
        certificates=tuple(certificates),
        unparseable=len(errors),
        first_error=errors[0] if errors else '',
        newer_go_only=bool(errors) and newer_only,
    )
    return bundle, ders


def ca_bundle_from_pem(data: bytes) -> CaBundle:
    """The file as both Go 1.19's and newer Go's ParseCertsPEM read it: where their PEM readers find different
    blocks, it loads only if both load it, and only certificates both read count."""
    old_blocks, new_blocks = pem_blocks(data), pem_blocks(data, newer_go=True)
    old, old_ders = _parsed(old_blocks)
    if new_blocks == old_blocks:
        return old
    new, new_ders = _parsed(new_blocks)
    if old.unparseable or not old.certificates:
        return replace(old, framing_differs=True)
    if new.unparseable or not new.certificates:
        return replace(new, newer_go_only=True, framing_differs=True)
    both = set(new_ders)
    common = tuple(cert for cert, der in zip(old.certificates, old_ders, strict=True) if der in both)
    return replace(old, certificates=common, framing_differs=True)
