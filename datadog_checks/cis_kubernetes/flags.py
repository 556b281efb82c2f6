"""Reading flags as kube-apiserver does: spf13/pflag with Kubernetes' word-separator normalization.

Proven against the real pflag by tests/test_flag_oracle.py.
"""

from __future__ import annotations

from collections.abc import Sequence

# Flags that never take the next argument: kube-apiserver's boolean flags across releases, plus --version, whose
# value is optional (pflag NoOptDefVal). A flag missing here is read as taking a value, which can only turn a set
# --client-ca-file into "absent" (a false failure), never the reverse.
NO_VALUE_FLAGS = frozenset(
    {
        'add-dir-header',
        'aggregator-reject-forwarding-redirect',
        'allow-privileged',
        'alsologtostderr',
        'anonymous-auth',
        'audit-log-batch-throttle-enable',
        'audit-log-compress',
        'audit-log-truncate-enabled',
        'audit-webhook-batch-throttle-enable',
        'audit-webhook-truncate-enabled',
        'contention-profiling',
        'disable-http2-serving',
        'emulation-forward-compatible',
        'enable-aggregator-routing',
        'enable-bootstrap-token-auth',
        'enable-garbage-collector',
        'enable-inflight-quota-handler',
        'enable-logs-handler',
        'enable-priority-and-fairness',
        'enable-swagger-ui',
        'encryption-provider-config-automatic-reload',
        'experimental-logging-sanitization',
        'help',
        'kubelet-https',
        'log-json-split-stream',
        'log-text-split-stream',
        'logtostderr',
        'one-output',
        'permit-address-sharing',
        'permit-port-sharing',
        'profiling',
        'repair-malformed-updates',
        'runtime-config-emulation-forward-compatible',
        'send-retry-after-while-not-ready-once',
        'service-account-extend-token-expiration',
        'service-account-lookup',
        'shutdown-send-retry-after',
        'skip-headers',
        'skip-log-headers',
        'version',
        'watch-cache',
    }
)
# kube-apiserver's one-letter flags: -v takes a value, -h does not.
SHORTHAND_FLAGS = {'v': ('v', True), 'h': ('help', False)}


def normalize_flag_name(name: str) -> str:
    return name.replace('_', '-')


def parse_flags(args: Sequence[str]) -> list[tuple[str, str]]:
    """Every (flag, value) occurrence in `args`, the arguments after the program name, as pflag reads them.

    Positional arguments are skipped; parsing stops at `--`. Tokens pflag would reject (and so a running apiserver
    cannot have) are skipped.
    """
    occurrences: list[tuple[str, str]] = []
    i, n = 0, len(args)
    while i < n:
        token = args[i]
        i += 1
        if len(token) < 2 or token[0] != '-':
            continue
        if token == '--':
            break
        if token[1] == '-':
            name, has_value, value = token[2:].partition('=')
            if not name or name[0] in '-=':
                continue
            name = normalize_flag_name(name)
            if not has_value:
                if name in NO_VALUE_FLAGS:
                    value = 'true'
                elif i < n:
                    value = args[i]
                    i += 1
                else:
                    continue
            occurrences.append((name, value))
            continue
        shorthands = token[1:]
        while shorthands:
            name, takes_value = SHORTHAND_FLAGS.get(shorthands[0], (None, False))
            if name is None:
                break
            if len(shorthands) > 2 and shorthands[1] == '=':
                occurrences.append((name, shorthands[2:]))
                break
            if not takes_value:
                occurrences.append((name, 'true'))
                shorthands = shorthands[1:]
                continue
            if len(shorthands) > 1:
                occurrences.append((name, shorthands[1:]))
            elif i < n:
                occurrences.append((name, args[i]))
                i += 1
            break
    return occurrences


def effective_flags(args: Sequence[str]) -> dict[str, str]:
    """Each flag's effective value in `args`: the last occurrence wins."""
    return dict(parse_flags(args))
