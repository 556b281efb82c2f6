"""Run the check once and print what the Agent would receive, like `datadog-agent check cis_kubernetes`.

On a machine without kube-apiserver it says so, then shows the check against stand-in apiservers it starts and
stops itself: a compliant node and a failing one, each with a CA generated on the spot. With Go installed, two more
nodes are served by the Go apiserver of tests/wire, so that the wire probe reads a real TLS handshake: one whose CA is
confirmed on the wire, one whose running process asks for no client certificate although its flags name a CA file.

    python -m devtools.demo [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

from datadog_checks.base.stubs import aggregator
from datadog_checks.base.stubs import datadog_agent as agent_stub
from datadog_checks.cis_kubernetes import CisKubernetesCheck
from devtools import certs, standin, wire_server

STATUS = {0: 'OK', 1: 'WARNING', 2: 'CRITICAL', 3: 'UNKNOWN'}
APISERVER = '/usr/local/bin/kube-apiserver'


def run_once(instance: dict | None = None) -> dict:
    """One run through run(), as the Agent calls it; returns what was submitted."""
    aggregator.reset()
    agent_stub._config['logs_enabled'] = True  # as an Agent with log collection on
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


def show(title: str, result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps({'scenario': title, **result}, indent=2))
        return
    print(f'\n=== {title} ===')
    if result['error']:
        print(f'  check error: {result["error"]}')
    print('  Service checks:')
    for sc in result['service_checks'] or [{'check': '(none sent)', 'status': '', 'tags': [], 'message': None}]:
        message = f'\n      message: {sc["message"]}' if sc['message'] else ''
        print(f'    {sc["check"]}  {sc["status"]}  {sc["tags"]}{message}')
    print('  Metrics:')
    for m in result['metrics']:
        print(f'    {m["metric"]}  gauge  {m["value"]}  {m["tags"]}')
    print('  Events:')
    for event in result['events'] or [{'msg_title': '(none sent)'}]:
        print(f'    {event["msg_title"]}')
        if 'alert_type' in event:
            print(f'      alert_type: {event["alert_type"]}  aggregation_key: {event["aggregation_key"]}')
            print(f'      tags: {event["tags"]}')
            for line in event['msg_text'].splitlines():
                print(f'      | {line}')
    print('  Finding logs (as the Agent ships them to Logs, for Cloud SIEM):')
    for log in result['logs'] or ['(none sent)']:
        print(f'    {json.dumps(log, sort_keys=True) if isinstance(log, dict) else log}')


def demonstrate_with_standins(as_json: bool) -> int:
    ok, why = standin.can_start()
    if not ok:
        print(f'Cannot start stand-in apiservers on this machine: {why}', file=sys.stderr)
        return 1
    workdir = tempfile.mkdtemp(prefix='cis-kubernetes-demo-')
    try:
        ca_file = os.path.join(workdir, 'pki', 'ca.crt')
        os.makedirs(os.path.dirname(ca_file))
        with open(ca_file, 'wb') as f:
            f.write(certs.valid_ca(days_left=365))
        scenarios = [
            ('Stand-in compliant node: --client-ca-file names a valid CA bundle', [f'--client-ca-file={ca_file}']),
            (
                'Stand-in failing node: --client-ca-file set, then emptied by a later occurrence',
                [
                    f'--client-ca-file={ca_file}',
                    '--client-ca-file=',
                ],
            ),
        ]
        for title, flags in scenarios:
            agent_stub.reset()  # each stand-in node starts with no announced status
            with standin.running([APISERVER, '--secure-port=6443', '--authorization-mode=Node,RBAC', *flags]):
                show(title, run_once(), as_json)
        demonstrate_on_the_wire(workdir, ca_file, as_json)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def demonstrate_on_the_wire(workdir: str, ca_file: str, as_json: bool) -> None:
    binary = wire_server.build(workdir)
    if binary is None:
        print('\n(Go is not installed: the nodes served by the Go apiserver, read on the wire, are not shown.)')
        return
    with open(f'{workdir}/serving.crt', 'wb') as f:
        f.write(certs.pem(certs.certificate('kube-apiserver', is_ca=False)))
    with open(f'{workdir}/serving.key', 'wb') as f:
        f.write(certs.private_key_pem())
    scenarios = [
        ('Stand-in node served by the Go apiserver: its client CA confirmed on the wire', []),
        (
            'Stand-in node served by the Go apiserver: --client-ca-file set, but the running process asks for no '
            'client certificate',
            ['--no-client-auth'],
        ),
    ]
    for title, extra in scenarios:
        agent_stub.reset()
        port = wire_server.free_port()
        argv = [binary, f'--secure-port={port}', '--bind-address=127.0.0.1', f'--client-ca-file={ca_file}']
        argv += [f'--tls-cert-file={workdir}/serving.crt', f'--tls-private-key-file={workdir}/serving.key', *extra]
        server = wire_server.start(argv)
        try:
            show(title, run_once(), as_json)
        finally:
            server.kill()
            server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', action='store_true', help='print JSON instead of text')
    args = parser.parse_args(argv)
    result = run_once()
    show('This machine', result, args.json)
    if result['service_checks']:
        return 0
    if not args.json:
        print('\nNo kube-apiserver runs on this machine, so the check sends no verdict here (only the process count).')
        print('Demonstrating against stand-in apiserver processes started and stopped by this command:')
    return demonstrate_with_standins(args.json)


if __name__ == '__main__':
    sys.exit(main())
