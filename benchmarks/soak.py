"""Soak: many consecutive runs while the stand-in apiserver restarts and its CA file rotates.

    python -m benchmarks.soak [--runs 10000] [--restart-every 100]

The apiserver restarts (a new process) every `--restart-every` runs, alternating between a valid client CA and an
expired one, so the node's compliance status changes at every restart; halfway through each phase the CA file is
rotated to a certificate with other dates. Every run is checked: the judged process is the current one, the verdict
and the days-left gauge match the file of the moment. At the end: memory and open file descriptors did not grow,
and exactly one event was sent per status change.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass

from datadog_checks.base import AgentCheck
from datadog_checks.base.stubs import aggregator
from datadog_checks.base.stubs import datadog_agent as agent_stub
from datadog_checks.cis_kubernetes import CisKubernetesCheck
from devtools import certs, standin

APISERVER = '/usr/local/bin/kube-apiserver'


@dataclass
class SoakResult:
    runs: int
    restarts: int
    rotations: int
    restarts_noticed: int
    rotations_noticed: int
    wrong_verdicts: int
    status_changes: int
    events: int
    rss_kib_after_warmup: int
    rss_kib_at_end: int
    fds_after_warmup: int
    fds_at_end: int

    @property
    def rss_growth_kib(self) -> int:
        return self.rss_kib_at_end - self.rss_kib_after_warmup


def rss_kib() -> int:
    with open('/proc/self/status') as f:
        return int(next(line for line in f if line.startswith('VmRSS:')).split()[1])


def open_fds() -> int:
    return len(os.listdir('/proc/self/fd'))


def ca_file_for(phase: int, rotated: bool) -> tuple[bytes, bool, float]:
    """(PEM, whether it passes, days left): valid CAs in even phases, expired ones in odd phases."""
    shift = 0.5 if rotated else 0.0
    if phase % 2 == 0:
        days_left = 400 - phase - shift
        return certs.pem(certs.certificate(f'ca-{phase}', days_valid=days_left + 1, starts_in_days=-1)), True, days_left
    days_left = -1 - phase - shift
    return certs.pem(certs.certificate(f'old-{phase}', days_valid=5, starts_in_days=days_left - 5)), False, days_left


def soak(runs: int = 10000, restart_every: int = 100, warmup: int = 1000) -> SoakResult:
    workdir = tempfile.mkdtemp(prefix='cis-kubernetes-soak-')
    ca_path = os.path.join(workdir, 'ca.crt')
    aggregator.reset()
    agent_stub.reset()
    check = CisKubernetesCheck('cis_kubernetes', {}, [{}])
    check.check_id = 'cis_kubernetes:soak'
    process = None
    counts: Counter[str] = Counter()
    expected_pass = days_left = None
    previous_status = None
    rss_warm = fds_warm = 0
    try:
        for run in range(runs):
            phase, step = divmod(run, restart_every)
            restarted = rotated = False
            if step == 0:
                if process is not None:
                    process.stop()
                data, expected_pass, days_left = ca_file_for(phase, rotated=False)
                with open(ca_path, 'wb') as f:
                    f.write(data)
                process = standin.start([APISERVER, '--secure-port=6443', f'--client-ca-file={ca_path}'])
                counts['restarts'] += phase > 0
                restarted = phase > 0
            elif step == restart_every // 2:
                data, expected_pass, days_left = ca_file_for(phase, rotated=True)
                with open(ca_path + '.new', 'wb') as f:
                    f.write(data)
                os.replace(ca_path + '.new', ca_path)
                counts['rotations'] += 1
                rotated = True
            aggregator.reset()
            agent_stub._sent_logs.clear()  # the stub keeps every log sent; the Agent ships them away
            error = check.run()
            if error:
                raise RuntimeError(json.loads(error)[0]['message'])
            (service_check,) = aggregator.service_checks('cis_kubernetes.apiserver.client_ca_file')
            gauges = [m.value for m in aggregator.metrics('cis_kubernetes.apiserver.client_ca.days_left')]
            judged_pid = check._apiservers[0].pid if check._apiservers else None
            gauge_right = len(gauges) == 1 and abs(gauges[0] - days_left) < 0.01
            right = (service_check.status != AgentCheck.CRITICAL) == expected_pass and judged_pid == process.pid
            right = right and gauge_right
            counts['wrong'] += not right
            counts['restarts_noticed'] += restarted and judged_pid == process.pid
            counts['rotations_noticed'] += rotated and gauge_right
            status = 'passed' if service_check.status != AgentCheck.CRITICAL else 'failed'
            counts['changes'] += previous_status is not None and status != previous_status
            previous_status = status
            counts['events'] += len(aggregator.events)
            if run + 1 == warmup:
                rss_warm, fds_warm = rss_kib(), open_fds()
    finally:
        if process is not None:
            process.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return SoakResult(
        runs=runs,
        restarts=counts['restarts'],
        rotations=counts['rotations'],
        restarts_noticed=counts['restarts_noticed'],
        rotations_noticed=counts['rotations_noticed'],
        wrong_verdicts=counts['wrong'],
        status_changes=counts['changes'],
        events=counts['events'],
        rss_kib_after_warmup=rss_warm,
        rss_kib_at_end=rss_kib(),
        fds_after_warmup=fds_warm,
        fds_at_end=open_fds(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=10000)
    parser.add_argument('--restart-every', type=int, default=100)
    args = parser.parse_args(argv)
    result = soak(args.runs, args.restart_every, warmup=min(1000, args.runs // 2))
    print(json.dumps({**asdict(result), 'rss_growth_kib': result.rss_growth_kib}, indent=2))
    healthy = (
        result.wrong_verdicts == 0
        and result.restarts_noticed == result.restarts
        and result.rotations_noticed == result.rotations
        and result.events == result.status_changes + 1
        and result.fds_at_end == result.fds_after_warmup
    )
    return 0 if healthy else 1


if __name__ == '__main__':
    sys.exit(main())
