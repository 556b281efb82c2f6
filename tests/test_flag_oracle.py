"""The flag reader against the real thing: spf13/pflag with Kubernetes' normalization, in Go (tests/oracle).

Random argv with --client-ca-file in every spelling, position and repetition, empty values, `--`, boolean and valued
flags around it, shorthands, non-ASCII and non-UTF-8 bytes. Where pflag accepts the argv (kube-apiserver would run),
the check must read the same effective value. .ci/run installs Go and pflag from Debian (golang-go,
golang-github-spf13-pflag-dev); elsewhere this skips with the reason.
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datadog_checks.cis_kubernetes.flags import effective_flags
from tests.conftest import build_go_oracle

ORACLE_SOURCE = Path(__file__).resolve().parent / 'oracle' / 'pflag_oracle.go'
STRING_FLAGS = ['client-ca-file', 'tls-cert-file', 'etcd-servers', 'token-auth-file', 'authorization-mode', 'v']
# kube-apiserver's boolean flags as its reference documentation lists them (flags shown without a type, 1.23, and
# klog's before 1.26), kept apart from the check's own list so that a flag the check misclassifies shows up here.
APISERVER_BOOLEANS = sorted(
    {
        'allow-privileged',
        'anonymous-auth',
        'audit-log-batch-throttle-enable',
        'audit-log-compress',
        'audit-log-truncate-enabled',
        'audit-webhook-batch-throttle-enable',
        'audit-webhook-truncate-enabled',
        'contention-profiling',
        'enable-aggregator-routing',
        'enable-bootstrap-token-auth',
        'enable-garbage-collector',
        'enable-priority-and-fairness',
        'experimental-logging-sanitization',
        'help',
        'permit-address-sharing',
        'permit-port-sharing',
        'profiling',
        'service-account-extend-token-expiration',
        'service-account-lookup',
        'shutdown-send-retry-after',
        'version',
        'watch-cache',
        'add-dir-header',
        'alsologtostderr',
        'logtostderr',
        'one-output',
        'skip-headers',
        'skip-log-headers',
    }
)
SHRINKING_EXAMPLES = 3000  # through hypothesis, which finds and shrinks a failing argv
BULK_CASES = 30000  # a seeded random sample, compared in one batch: the tens of thousands of cases


class Oracle:
    def __init__(self, binary: str):
        self.binary = binary
        self.process = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._send({'bools': APISERVER_BOOLEANS, 'strings': STRING_FLAGS})

    def _send(self, payload) -> None:
        self.process.stdin.write(json.dumps(payload).encode() + b'\n')
        self.process.stdin.flush()

    def client_ca(self, argv: list[bytes]) -> tuple[bool, bytes | None]:
        """(pflag accepted the argv, the effective --client-ca-file or None when unset)."""
        self._send([base64.b64encode(arg).decode() for arg in argv])
        answer = json.loads(self.process.stdout.readline())
        if not answer['ok']:
            return False, None
        return True, base64.b64decode(answer['value']) if answer['set'] else None

    def batch(self, argvs: list[list[bytes]]) -> list[tuple[bool, bytes | None]]:
        spec = {'bools': APISERVER_BOOLEANS, 'strings': STRING_FLAGS}
        lines = [json.dumps(spec)] + [json.dumps([base64.b64encode(a).decode() for a in argv]) for argv in argvs]
        output = subprocess.run(
            [self.binary], input='\n'.join(lines) + '\n', capture_output=True, text=True, check=True
        )
        answers = [json.loads(line) for line in output.stdout.splitlines()]
        return [(a['ok'], base64.b64decode(a['value']) if a['ok'] and a['set'] else None) for a in answers]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture(scope='module')
def oracle(tmp_path_factory):
    binary = build_go_oracle(tmp_path_factory, ORACLE_SOURCE, 'github.com/spf13/pflag', 'golang-github-spf13-pflag-dev')
    instance = Oracle(binary)
    yield instance
    instance.close()


BULK_VALUES = [
    b'/etc/kubernetes/pki/ca.crt',
    b'',
    b'ca.crt',
    b'/pki/a=b.crt',
    b'/pki/\xc3\xa7\xc3\xa0.crt',
    b'/pki/\xff\xfe.crt',
    b'--client-ca-file=/x',
    b'-',
    b'--',
    b'-v',
    b' /pki/space.crt',
]
VALUES = st.sampled_from(BULK_VALUES)
NAMES = st.sampled_from([b'client-ca-file', b'client_ca_file', b'client-ca_file'])


@st.composite
def client_ca_tokens(draw) -> list[bytes]:
    name, value = draw(NAMES), draw(VALUES)
    if draw(st.booleans()):
        return [b'--' + name + b'=' + value]
    return [b'--' + name, value]


@st.composite
def other_tokens(draw) -> list[bytes]:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return [b'--' + draw(st.sampled_from(APISERVER_BOOLEANS)).encode()]
    if kind == 1:
        return [b'--' + draw(st.sampled_from(['profiling', 'anonymous-auth', 'allow_privileged'])).encode() + b'=false']
    if kind == 2:
        return [b'--tls-cert-file', draw(VALUES)]
    if kind == 3:
        return [b'--etcd_servers=' + draw(VALUES)]
    if kind == 4:
        return [b'--']
    if kind == 5:
        return [draw(st.sampled_from([b'serve', b'', b'-', b'\xff']))]
    if kind == 6:
        return draw(st.sampled_from([[b'-v'], [b'-v', b'3'], [b'-v=2'], [b'-v4'], [b'-h'], [b'-hv3']]))
    if kind == 7:
        return [b'--version']
    if kind == 8:
        return [b'--token-auth-file', draw(VALUES)]
    return draw(client_ca_tokens())


@st.composite
def argvs(draw) -> list[bytes]:
    parts = draw(st.lists(st.one_of(client_ca_tokens(), other_tokens()), max_size=10))
    return [token for part in parts for token in part]


def check_reader_against_pflag(oracle: Oracle, argv: list[bytes]) -> bool:
    accepted, expected = oracle.client_ca(argv)
    if not accepted:
        return False  # kube-apiserver would refuse to start: no running process has this argv
    ours = effective_flags([os.fsdecode(arg) for arg in argv]).get('client-ca-file')
    assert (None if ours is None else os.fsencode(ours)) == expected, argv
    return True


@settings(
    max_examples=SHRINKING_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(argv=argvs())
def test_reader_reads_client_ca_file_exactly_as_pflag(oracle, argv):
    check_reader_against_pflag(oracle, argv)


def random_argv(rng: random.Random) -> list[bytes]:
    """The same vocabulary as the hypothesis strategy, drawn from a seeded generator for bulk comparison."""
    values = BULK_VALUES
    argv: list[bytes] = []
    for _ in range(rng.randint(0, 10)):
        kind = rng.randint(0, 11)
        if kind <= 2:
            name = rng.choice([b'client-ca-file', b'client_ca_file', b'client-ca_file'])
            value = rng.choice(values)
            argv += [b'--' + name + b'=' + value] if rng.random() < 0.5 else [b'--' + name, value]
        elif kind == 3:
            argv.append(b'--' + rng.choice(APISERVER_BOOLEANS).encode())
        elif kind == 4:
            argv += [b'--tls-cert-file', rng.choice(values)]
        elif kind == 5:
            argv.append(b'--')
        elif kind == 6:
            argv.append(rng.choice([b'serve', b'', b'-', b'\xff']))
        elif kind == 7:
            argv += rng.choice([[b'-v'], [b'-v', b'3'], [b'-v=2'], [b'-v4'], [b'-h'], [b'-hv3']])
        elif kind == 8:
            argv.append(b'--etcd_servers=' + rng.choice(values))
        elif kind == 9:
            argv.append(b'--anonymous-auth=false')
        elif kind == 10:
            argv += [b'--token-auth-file', rng.choice(values)]
        else:
            argv.append(b'--version')
    return argv


def test_reader_agrees_with_pflag_on_tens_of_thousands_of_seeded_argv(oracle):
    rng = random.Random(20261129)
    cases = [random_argv(rng) for _ in range(BULK_CASES)]
    answers = oracle.batch(cases)
    accepted = 0
    for argv, (ok, expected) in zip(cases, answers, strict=True):
        if not ok:
            continue  # kube-apiserver would refuse to start: no running process has this argv
        accepted += 1
        ours = effective_flags([os.fsdecode(arg) for arg in argv]).get('client-ca-file')
        assert (None if ours is None else os.fsencode(ours)) == expected, argv
    assert accepted > BULK_CASES * 0.6  # the comparison is worth its cases only if most are valid argv


@pytest.mark.parametrize(
    'argv',
    [
        [b'--tls-cert-file', b'--client-ca-file=/x'],
        [b'--profiling', b'--client-ca-file=/x'],
        [b'--client-ca-file=/x', b'--', b'--client-ca-file='],
        [b'--client_ca_file', b'/x', b'--client-ca-file='],
        [b'-v', b'--client-ca-file=/x'],
        [b'-hv3', b'--client-ca-file=/x'],
        [b'--version', b'--client-ca-file', b'/x'],
    ],
)
def test_known_tricky_argv_agree_with_pflag(oracle, argv):
    assert check_reader_against_pflag(oracle, argv)
