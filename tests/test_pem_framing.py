"""PEM framing as Go's pem.Decode, in linear time: the cases that decide a verdict, and adversarial files.

The same rules are compared with Go itself in tests/test_x509_oracle.py; these run without Go.
"""

from __future__ import annotations

import time

from datadog_checks.cis_kubernetes.ca_bundle import ca_bundle_from_pem, pem_blocks
from devtools import certs

FOUR_MIB = 4 << 20
BLOCK = certs.valid_ca()


def judged_in(data: bytes) -> float:
    started = time.perf_counter()
    ca_bundle_from_pem(data)
    return time.perf_counter() - started


def repeat_to(unit: bytes, size: int) -> bytes:
    return unit * (size // len(unit))


ADVERSARIAL = {
    # every BEGIN line makes Go search the rest of the file for an END (about 28 s for 400 KB with the old regex)
    'BEGIN lines': b'-----BEGIN CERTIFICATE-----\n',
    'BEGIN lines with one END at the end': b'-----BEGIN CERTIFICATE-----\n',
    'BEGIN lines whose END type differs': b'-----BEGIN A-----\n',
    'header lines': b'-----BEGIN CERTIFICATE-----\nProc-Type: 4\n',
    'END lines': b'-----END CERTIFICATE-----\n',
    'joined blocks': b'-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----',
}


LONG_LINES = {
    'a BEGIN line with megabytes of trailing spaces': (b'-----BEGIN CERTIFICATE-----', b' ', b'\n'),
    'BEGIN lines, then an END line with megabytes of trailing spaces': (
        b'-----BEGIN CERTIFICATE-----\n' * 20000 + b'-----END CERTIFICATE-----',
        b' ',
        b'x\n',
    ),
    'a body of megabytes of base64 under many BEGIN lines': (b'-----BEGIN CERTIFICATE-----\n' * 20000, b'A', b'\n'),
}


def adversarial(name: str, size: int) -> bytes:
    if name in LONG_LINES:
        head, fill, tail = LONG_LINES[name]
        return head + fill * (size - len(head) - len(tail)) + tail
    data = repeat_to(ADVERSARIAL[name], size)
    if 'one END' in name:
        data += b'AAAA\n-----END CERTIFICATE-----\n'
    if 'differs' in name:
        data += b'-----END B-----\n'
    return data


def test_a_4_mib_adversarial_file_is_judged_well_under_a_second():
    for name in [*ADVERSARIAL, *LONG_LINES]:
        elapsed = judged_in(adversarial(name, FOUR_MIB))
        assert elapsed < 2.0, f'{name}: {elapsed:.2f} s'


def test_parsing_time_grows_linearly_not_quadratically():
    """Four times the bytes takes about four times as long (quadratic would be sixteen); best of three runs."""
    for name in [*ADVERSARIAL, *LONG_LINES]:
        small = min(judged_in(adversarial(name, 1 << 20)) for _ in range(3))
        large = min(judged_in(adversarial(name, FOUR_MIB)) for _ in range(3))
        assert large < 8 * small + 0.05, f'{name}: 1 MiB {small:.3f} s, 4 MiB {large:.3f} s'


def test_long_clean_base64_between_many_begins_is_read_once():
    body = b'A' * (1 << 20)
    data = b'-----BEGIN CERTIFICATE-----\n' * 20000 + body + b'\n-----END CERTIFICATE-----\n'
    assert judged_in(data) < 2.0


def test_block_found_after_a_damaged_one():
    data = b'-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n' + BLOCK
    assert len(ca_bundle_from_pem(data).certificates) == 1


def test_byte_order_mark_hides_the_first_block():
    assert ca_bundle_from_pem(b'\xef\xbb\xbf' + BLOCK).certificates == ()


def test_files_joined_without_newline_lose_both_blocks():
    assert pem_blocks(BLOCK.rstrip(b'\n') + BLOCK) == []


def test_blocks_with_headers_are_skipped_as_parse_certs_pem_does():
    data = BLOCK.replace(b'-----\nMI', b'-----\nProc-Type: 4,ENCRYPTED\n\nMI', 1)
    (block,) = pem_blocks(data)
    assert block.has_headers
    assert ca_bundle_from_pem(data).certificates == ()


def test_indented_begin_is_not_a_block_but_indented_body_is_fine():
    assert pem_blocks(b' ' + BLOCK) == []
    assert len(ca_bundle_from_pem(BLOCK.replace(b'\nMI', b'\n   MI')).certificates) == 1
