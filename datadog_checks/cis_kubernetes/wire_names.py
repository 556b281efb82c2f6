"""DER names (pure): the subjects of the certificates in a PEM bundle exactly as encoded (Go's RawSubject, what
crypto/tls advertises in a CertificateRequest), and a DistinguishedName shown for messages.

Only the subject is needed, so this walks the certificate's outer structure without certificates.py's full parse.
"""

from __future__ import annotations

from .ca_bundle import pem_blocks

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


def _wire_tlv(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of element) of the DER element at `offset`; ValueError when malformed."""
    if offset + 2 > len(data):
        raise ValueError('truncated DER')
    tag, length = data[offset], data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError('bad DER length')
        length = int.from_bytes(data[start : start + count], 'big')
        start += count
    end = start + length
    if end > len(data):
        raise ValueError('truncated DER')
    return tag, start, end


def _wire_children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, offset, contents start, end) of each element between start and end."""
    children = []
    offset = start
    while offset < end:
        tag, content, stop = _wire_tlv(data, offset)
        children.append((tag, offset, content, stop))
        offset = stop
    return children


def certificate_subject_der(der: bytes) -> bytes:
    """The certificate's subject Name exactly as encoded (tag and length included), as Go's RawSubject."""
    tag, start, end = _wire_tlv(der, 0)
    tbs_tag, tbs_start, tbs_end = _wire_tlv(der, start)
    if tag != 0x30 or tbs_tag != 0x30:
        raise ValueError('not a certificate')
    fields = _wire_children(der, tbs_start, tbs_end)
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    if len(fields) < 5 or fields[4][0] != 0x30:  # serial, signature, issuer, validity, subject
        raise ValueError('not a certificate')
    _, offset, _, stop = fields[4]
    return der[offset:stop]


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


def _wire_oid(content: bytes) -> str:
    if not content:
        return ''
    parts = [*divmod(content[0], 40)] if content[0] < 80 else [2, content[0] - 80]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return '.'.join(map(str, parts))


def display_name(name: bytes) -> str:
    """A DistinguishedName for messages, most significant attribute first (CN=kubernetes-ca,O=example)."""
    try:
        tag, start, end = _wire_tlv(name, 0)
        if tag != 0x30:
            raise ValueError('not a Name')
        shown = []
        for _, _, set_start, set_end in _wire_children(name, start, end):
            for _, _, ava_start, ava_end in _wire_children(name, set_start, set_end):
                (_, _, oid_start, oid_end), (value_tag, _, value_start, value_end) = _wire_children(
                    name, ava_start, ava_end
                )[:2]
                oid = _wire_oid(name[oid_start:oid_end])
                codec = 'utf-16-be' if value_tag == 0x1E else 'utf-8'
                value = name[value_start:value_end].decode(codec, 'replace')
                shown.append(f'{_ATTRIBUTE_NAMES.get(oid, oid)}={value}')
        return ','.join(reversed(shown)) or '(empty name)'
    except (ValueError, IndexError):
        return f'(undecodable name, {len(name)} bytes)'
