"""Run the check once and print what the Agent would receive, like `datadog-agent check cis_kubernetes`.

On a machine without kube-apiserver it says so, then shows the check against stand-in apiservers it starts and
stops itself, each a node of its own with a CA generated on the spot: a summary table first, then what each node
sent. As root, the stand-ins run in PID and network namespaces of their own, so that nothing else on this machine is
judged with them. With Go installed, two of the nodes are served by the Go apiserver of tests/wire, so that the wire
probe reads a real TLS handshake.

    python -m devtools.demo [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from datadog_checks.base.stubs import aggregator
from datadog_checks.base.stubs import datadog_agent as agent_stub
from datadog_checks.cis_kubernetes import CisKubernetesCheck
from datadog_checks.cis_kubernetes.control import CONTROL
from devtools import certs, standin, wire_server

STATUS = {0: 'OK', 1: 'WARNING', 2: 'CRITICAL', 3: 'UNKNOWN'}
APISERVER = '/usr/local/bin/kube-apiserver'
WIDTH = 118
WHY = f'**Why it matters:** {CONTROL.rationale}'
OWN_NAMESPACES = 'CISK_DEMO_OWN_NAMESPACES'


def run_once(instance: dict | None = None, hostname: str | None = None) -> dict:
    """One run through run(), as the Agent calls it; returns what was submitted."""
    aggregator.reset()
    agent_stub._config['logs_enabled'] = True  # as an Agent with log collection on
    if hostname:
        agent_stub._hostname = hostname
    check = CisKubernetesCheck('cis_kubernetes', {}, [instance or {}])
    check.check_id = 'cis_kubernetes:demo'
    error = check.run()
    return {
        'error': json.loads(error)[0]['message'] if error else None,
        'service_checks': [
            {'check': s.name, 'status': STATUS[s.status], 'tags': s.tags, 'message': s.message}
            for name in sorted(aggregator._service_checks)
            for s in aggregator.service_checks(name)
        ],
        'metrics': [
            {'metric': m.name, 'type': 'gauge', 'value': m.value, 'tags': m.tags}
            for name in sorted(aggregator._metrics)
            for m in aggregator.metrics(name)
        ],
        'logs': list(agent_stub._sent_logs.get(check.check_id, [])),
        'events': [
            {key: event.get(key) for key in ('msg_title', 'alert_type', 'aggregation_key', 'tags', 'msg_text')}
            for event in aggregator.events
        ],
    }


@dataclass(frozen=True)
class Node:
    name: str  # the hostname its events carry
    shows: str
    start: Callable[[], contextlib.AbstractContextManager]


def apiservers(result: dict) -> int:
    counts = [m['value'] for m in result['metrics'] if m['metric'] == 'cis_kubernetes.apiserver.processes']
    return int(counts[0]) if counts else 0


def one_line(text: str | None, limit: int = 52) -> str:
    text = (text or '').split(' Fix: ')[0]
    return text if len(text) <= limit else text[: limit - 1] + '…'


def summary(rows: list[tuple[Node, dict]]) -> None:
    print(f'\n{"node":<12} {"what it shows":<45} {"status":<9} reason')
    for node, result in rows:
        sc = result['service_checks'][0] if result['service_checks'] else {'status': '(none)', 'message': None}
        reason = one_line(sc['message']) if sc['message'] else 'PASS (an OK service check carries no message)'
        if apiservers(result) != 1:
            reason = f'{apiservers(result)} apiservers seen: something else on this machine was judged too. ' + reason
        print(f'{node.name:<12} {node.shows:<45} {sc["status"]:<9} {reason}')


def wrapped(text: str, indent: str) -> str:
    return textwrap.fill(text, WIDTH, initial_indent=indent, subsequent_indent=indent + '  ')


def folded(log: dict, limit: int = 100) -> list[str]:
    """A log's JSON a field to a line, each value cut at `limit` characters, so that it reads on a screen."""
    lines = []
    for key in sorted(log):
        value = json.dumps(log[key], sort_keys=True, ensure_ascii=False)
        lines.append(f'"{key}": ' + (value if len(value) <= limit else value[: limit - 1] + '…'))
    return lines


def details(title: str, result: dict) -> None:
    print(f'\n=== {title} ===')
    if result['error']:
        print(f'  check error: {result["error"]}')
    print('  Service checks:')
    for sc in result['service_checks'] or [{'check': '(none sent)', 'status': '', 'tags': [], 'message': None}]:
        print(wrapped(f'{sc["check"]}  {sc["status"]}  {sc["tags"]}', '    '))
        if sc['message']:
            print(wrapped(f'message: {sc["message"]}', '      '))
    print('  Metrics:')
    for m in result['metrics']:
        print(wrapped(f'{m["metric"]}  gauge  {m["value"]}  {m["tags"]}', '    '))
    print('  Events:')
    for event in result['events'] or [{'msg_title': '(none sent)'}]:
        print(f'    {event["msg_title"]}')
        if 'alert_type' in event:
            print(f'      alert_type: {event["alert_type"]}  aggregation_key: {event["aggregation_key"]}')
            print(wrapped(f'tags: {event["tags"]}', '      '))
            for line in event['msg_text'].replace(WHY, '**Why it matters:** (printed once, above)').splitlines():
                print(wrapped(line, '      | ') if line else '      |')
    print('  Finding logs (as the Agent ships them to Logs, for Cloud SIEM; long values folded):')
    for log in result['logs'] or ['(none sent)']:
        for line in folded(log) if isinstance(log, dict) else [log]:
            print(f'    {line}')


def nodes(workdir: str) -> list[Node]:
    ca_file = os.path.join(workdir, 'pki', 'ca.crt')
    os.makedirs(os.path.dirname(ca_file))
    with open(ca_file, 'wb') as f:
        f.write(certs.valid_ca(days_left=365))
    expiring = os.path.join(workdir, 'pki', 'expiring-ca.crt')
    with open(expiring, 'wb') as f:
        f.write(certs.valid_ca(days_left=10))
    flags = [APISERVER, '--secure-port=6443', '--authorization-mode=Node,RBAC']
    out = [
        Node('demo-node-1', 'a valid CA bundle', lambda: standin.running([*flags, f'--client-ca-file={ca_file}'])),
        Node(
            'demo-node-2',
            'the flag set, then emptied by a later one',
            lambda: standin.running([*flags, f'--client-ca-file={ca_file}', '--client-ca-file=']),
        ),
        Node(
            'demo-node-3', 'a CA expiring in 10 days', lambda: standin.running([*flags, f'--client-ca-file={expiring}'])
        ),
    ]
    binary = wire_server.build(workdir)
    if binary is None:
        return out
    with open(f'{workdir}/serving.crt', 'wb') as f:
        f.write(certs.pem(certs.certificate('kube-apiserver', is_ca=False)))
    with open(f'{workdir}/serving.key', 'wb') as f:
        f.write(certs.private_key_pem())

    def served(*extra: str):
        port = wire_server.free_port()
        argv = [binary, f'--secure-port={port}', '--bind-address=127.0.0.1', f'--client-ca-file={ca_file}']
        return _serving(
            [*argv, f'--tls-cert-file={workdir}/serving.crt', f'--tls-private-key-file={workdir}/serving.key', *extra]
        )

    out.append(Node('demo-node-4', 'Go apiserver: the CA confirmed on the wire', served))
    out.append(Node('demo-node-5', 'Go apiserver: flag set, no client cert asked', lambda: served('--no-client-auth')))
    return out


@contextlib.contextmanager
def _serving(argv: list[str]) -> Iterator[None]:
    server = wire_server.start(argv)
    try:
        yield
    finally:
        server.kill()
        server.wait()


def demonstrate_with_standins(as_json: bool) -> int:
    ok, why = standin.can_start()
    if not ok:
        print(f'Cannot start stand-in apiservers on this machine: {why}', file=sys.stderr)
        return 1
    workdir = tempfile.mkdtemp(prefix='cis-kubernetes-demo-')
    try:
        demo_nodes = nodes(workdir)
        rows = []
        for node in demo_nodes:
            agent_stub.reset()  # each stand-in node starts with no announced status
            with node.start():
                rows.append((node, run_once(hostname=node.name)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if as_json:
        for node, result in rows:
            print(json.dumps({'node': node.name, 'shows': node.shows, **result}, indent=2))
        return 0
    go = '' if len(demo_nodes) == 5 else ' (Go is not installed: the two nodes read on the wire are not shown)'
    print(f'{len(demo_nodes)} stand-in nodes, each judged alone{go}:')
    summary(rows)
    print()
    print(wrapped(WHY, ''))
    for node, result in rows:
        details(f'{node.name}: {node.shows}', result)
    return 0


def in_own_namespaces(argv: list[str]) -> int | None:
    """As root, the stand-ins in PID and network namespaces of their own (the exit code), or None where not."""
    already = os.environ.get(OWN_NAMESPACES) or os.environ.get('CISK_OWN_NAMESPACES')  # dev.sh test's namespaces
    if os.geteuid() != 0 or already or shutil.which('unshare') is None:
        return None
    command = ['unshare', '--pid', '--net', '--fork', '--mount-proc', 'sh', '-c', 'ip link set lo up && exec "$@"', '-']
    command += [sys.executable, '-m', 'devtools.demo', '--standins', *argv]
    if subprocess.run([*command[:5], 'true'], capture_output=True).returncode != 0:
        return None
    return subprocess.run(command, env={**os.environ, OWN_NAMESPACES: '1'}).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', action='store_true', help='print JSON instead of text')
    parser.add_argument('--standins', action='store_true', help='the stand-in nodes, whatever runs on this machine')
    args = parser.parse_args(argv)
    logging.getLogger().addHandler(logging.NullHandler())  # the Agent's log lines: the details show the warnings
    if not args.standins:
        result = run_once()
        if result['service_checks']:
            details('This machine', result) if not args.json else print(json.dumps(result, indent=2))
            return 0
        if not args.json:
            print('No kube-apiserver runs on this machine: the check sends no verdict here (only the process count).')
    own = in_own_namespaces(['--json'] if args.json else [])
    return own if own is not None else demonstrate_with_standins(args.json)


if __name__ == '__main__':
    sys.exit(main())
