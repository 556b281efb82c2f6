"""Which command-line values are registered as secrets: exactly the credentials, never a duration, version or number."""

from __future__ import annotations

from pathlib import Path

import pytest

from datadog_checks.base import AgentCheck
from datadog_checks.cis_kubernetes.flags import NO_VALUE_FLAGS, effective_flags
from datadog_checks.cis_kubernetes.scrubbing import (
    APISERVER_NOT_SECRET_FLAGS,
    APISERVER_URL_FLAGS,
    SECRET_FLAG_WORDS,
    secret_flag_values,
)
from tests.conftest import needs_standins

# kube-apiserver's flags from its reference pages (sources at the top of the file).
FLAG_TABLE = Path(__file__).parent / 'data' / 'kube-apiserver-flags.tsv'
APISERVER_FLAGS = {
    line.split('\t')[0]: line.split('\t')[1]
    for line in FLAG_TABLE.read_text().splitlines()
    if line and not line.startswith('#')
}
APISERVER = '/usr/local/bin/kube-apiserver'


def secrets(*argv: str) -> list[str]:
    return secret_flag_values(effective_flags(list(argv)))


@pytest.mark.parametrize('flag', sorted(APISERVER_URL_FLAGS | APISERVER_NOT_SECRET_FLAGS))
def test_every_listed_flag_is_a_kube_apiserver_flag(flag):
    assert flag in APISERVER_FLAGS


def test_every_kube_apiserver_flag_named_like_a_secret_is_classified():
    named = {f for f in APISERVER_FLAGS if any(word in f for word in SECRET_FLAG_WORDS)}
    booleans = {f for f in named if APISERVER_FLAGS[f] == 'bool'}
    assert booleans <= NO_VALUE_FLAGS | {'insecure-allow-any-token'}
    assert named - booleans <= APISERVER_NOT_SECRET_FLAGS | APISERVER_URL_FLAGS, named - booleans


@pytest.mark.parametrize(
    'argv',
    [
        ['--authentication-token-webhook-cache-ttl=0'],
        ['--authentication-token-webhook-version=v1'],
        ['--authentication-token-webhook-version=v1beta1'],
        ['--service-account-max-token-expiration=1h'],
        ['--service-account-max-token-expiration=8760h0m0s'],
        ['--token-auth-file=/etc/kubernetes/tokens.csv'],
        ['--tls-private-key-file=/etc/kubernetes/pki/apiserver.key'],
        ['--service-account-key-file=/etc/kubernetes/pki/sa.pub'],
        ['--tls-sni-cert-key=foo.crt,foo.key:*.foo.com'],
        ['--etcd-servers=https://10.0.0.1:2379,https://10.0.0.2:2379'],
        ['--enable-bootstrap-token-auth'],
        ['--my-token=0'],
        ['--my-token=42'],
        ['--my-api-key=2m30s'],
        ['--my-secret=true'],
        ['--my-secret=abc'],  # shorter than a credential: masking it would mask every "abc" of every message
        ['--my-key=1.2.3'],
        ['--my-key=./keys/k.pem'],
        ['--token=short'],
    ],
)
def test_no_duration_version_number_path_or_short_value_is_a_secret(argv):
    assert secrets(*argv) == []


@pytest.mark.parametrize(
    'argv, secret',
    [
        (['--etcd-servers=https://root:t00rpass@10.0.0.1:2379,https://10.0.0.2:2379'], 'root:t00rpass'),
        (['--etcd-servers-overrides=/events#https://u:pa55word@10.0.0.9:2379'], 'u:pa55word'),
        (['--token', 'K10abc::server:S3cr3tT0k'], 'K10abc::server:S3cr3tT0k'),
        (['--agent-token=Ag3ntT0ken'], 'Ag3ntT0ken'),
        (['--datastore-endpoint=postgres://k3s:Pg-pa55@db:5432/k3s'], 'postgres://k3s:Pg-pa55@db:5432/k3s'),
        (['--etcd-s3-secret-key=wJalrXUtnFEMI/K7MDENG'], 'wJalrXUtnFEMI/K7MDENG'),
        (['--oidc-client-secret=hunter22'], 'hunter22'),
        (['--some-new-password', 'c0rrectH0rse'], 'c0rrectH0rse'),
        (['--proxy=http://user:pr0xyPass@proxy:3128'], 'user:pr0xyPass'),  # userinfo in any URL
    ],
)
def test_credentials_are_secrets(argv, secret):
    assert secret in secrets(*argv)


@pytest.mark.parametrize('word', SECRET_FLAG_WORDS)
def test_an_unknown_flag_named_with_any_secret_word_has_its_credential_masked(word):
    assert secrets(f'--some-{word}-here=Cr3dentialValue') == ['Cr3dentialValue']
    assert secrets('--some-setting-here=Cr3dentialValue') == []


@needs_standins
def test_a_zero_valued_token_flag_does_not_mask_the_digits_of_a_message(
    make_check, dd_run_check, aggregator, apiservers
):
    """As the issue reports: `--authentication-token-webhook-cache-ttl=0` made messages read `pid 1********938`."""
    process = apiservers(
        [
            APISERVER,
            '--authentication-token-webhook-cache-ttl=0',
            '--authentication-token-webhook-version=v1',
            '--service-account-max-token-expiration=1h',
            '--client-ca-file=',
        ]
    )
    dd_run_check(make_check())
    (sc,) = aggregator.service_checks('cis_kubernetes.apiserver.client_ca_file')
    assert sc.status == AgentCheck.CRITICAL
    assert f'pid {process.pid}' in sc.message and '*' not in sc.message
