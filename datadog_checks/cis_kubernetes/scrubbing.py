"""Which values on a process's command line are secrets, to be registered with the Agent's scrubber so that they
never appear in a message, an event or a log.

Exactly the flags that carry a credential in their value, from the programs' own flag definitions, and no duration,
version, number, path or short value: a registered secret is masked wherever its text appears, so registering `0`
would mask every zero of every message. A flag this check does not know is masked when its name says secret and its
value looks like a credential.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from .flags import NO_VALUE_FLAGS

# kube-apiserver takes every credential from a file (its flag reference, tests/data/kube-apiserver-flags.tsv); only
# these take URLs, where an operator may write user:password@ (the documented form is scheme://ip:port).
APISERVER_URL_FLAGS = frozenset({'etcd-servers', 'etcd-servers-overrides'})
# kube-apiserver flags named like a secret whose value is a path, a duration, a version or a user pattern.
APISERVER_NOT_SECRET_FLAGS = frozenset(
    {
        'authentication-token-webhook-cache-ttl',
        'authentication-token-webhook-config-file',
        'authentication-token-webhook-version',
        'etcd-keyfile',
        'experimental-keystone-ca-file',
        'experimental-keystone-url',
        'google-json-key',
        'insecure-allow-any-token',
        'kubelet-client-key',
        'proxy-client-key-file',
        'service-account-key-file',
        'service-account-max-token-expiration',
        'service-account-signing-key-file',
        'ssh-keyfile',
        'tls-private-key-file',
        'tls-sni-cert-key',
        'token-auth-file',
    }
)
# The `server` command of k3s and RKE2 (whose arguments the check reads where they are visible): credentials as
# values (k3s-io/k3s pkg/cli/cmds/server.go at 005499a940eafe99977bcabd6991a888a4cb6642, agent.go at
# 00cc29ba2779b5a8ac2a76e234080d8ab685a8ad; RKE2 copies them: rancher/rke2 pkg/cli/cmds/server.go at
# 740a5b121cc56d562ae252348ae12c94d32429e7). --datastore-endpoint is a DSN such as postgres://user:password@host/db.
K3S_CREDENTIAL_FLAGS = frozenset(
    {
        'token',
        'agent-token',
        'datastore-endpoint',
        'etcd-s3-access-key',
        'etcd-s3-secret-key',
        'etcd-s3-session-token',
        'vpn-auth',
        'cluster-secret',
    }
)
K3S_URL_FLAGS = frozenset({'server', 'etcd-s3-endpoint', 'etcd-s3-proxy'})
K3S_NOT_SECRET_FLAGS = frozenset({'token-file', 'agent-token-file', 'etcd-s3-config-secret'})  # paths and names
PUBLIC_VALUE_FLAGS = APISERVER_URL_FLAGS | K3S_URL_FLAGS | APISERVER_NOT_SECRET_FLAGS | K3S_NOT_SECRET_FLAGS
# Words that make an unknown flag's value a suspect (the process agent's default sensitive words among them).
SECRET_FLAG_WORDS = ('token', 'password', 'passwd', 'pwd', 'secret', 'key', 'credential')
# One search of a flag's name, not one per word.
_SECRET_FLAG_WORD = re.compile('|'.join(map(re.escape, SECRET_FLAG_WORDS)))
MIN_SECRET_LENGTH = 6
NOT_A_CREDENTIAL = re.compile(
    r'true|false|[-+]?\d+(\.\d+)?|v\d[\w.]*|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+|[\w.-]*\d+\.\d+(\.\d+)*', re.IGNORECASE
)
URL_USERINFO = re.compile(r'[A-Za-z][A-Za-z0-9+.-]*://([^/@\s,;]+)@')


def secret_flag_values(flags: Mapping[str, str]) -> list[str]:
    """The secrets among a process's effective flags, each at least MIN_SECRET_LENGTH characters."""
    found = []
    for name, value in flags.items():
        for secret in _secrets_in(name, value):
            if len(secret) >= MIN_SECRET_LENGTH and secret not in found:
                found.append(secret)
    return found


def _secrets_in(name: str, value: str) -> Iterator[str]:
    if not value or name in NO_VALUE_FLAGS:
        return
    if '@' in value:  # user:password@ in any URL, whatever the flag
        yield from URL_USERINFO.findall(value)
    if name in K3S_CREDENTIAL_FLAGS:
        yield value
    elif name in PUBLIC_VALUE_FLAGS:  # URLs (their userinfo is taken above), paths and names
        return
    elif _SECRET_FLAG_WORD.search(name) and looks_like_credential(value):
        yield value


def looks_like_credential(value: str) -> bool:
    """Not a path, a number, a duration, a version or a boolean."""
    return value[:1] not in ('/', '.', '~') and not NOT_A_CREDENTIAL.fullmatch(value)
