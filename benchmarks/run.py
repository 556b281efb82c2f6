"""What one run of the check costs on a busy control-plane node, side by side with what users run today.

    python -m benchmarks.run                      # 200, 2,000 and 10,000 extra idle processes; two minutes
    python -m benchmarks.run --counts 50 --quick  # a smoke run

For each node (--nodes: a stand-in kube-apiserver set up as kubeadm sets one up, its flags and its static pod
manifest; and a plain one, its flags alone; each with a valid client CA) and each count, it starts that many idle
processes (and stops them afterwards), then measures, in the same process table:
  1. the check's steady-state run() (apiserver known, file unchanged), as the Agent calls it;
  2. its first run() (cold discovery, first parse of the CA file) of a new check instance, alternately with
  3. the floor: list /proc and readlink every process's executable once, the least any scan can do;
  4. kube-bench's audit command: /bin/ps -ef | grep kube-apiserver | grep -v grep;
  5. a naive psutil full scan: psutil.process_iter(['name']) with psutil's process cache cleared;
  6. the mean of runs 2 to 41 of a new check, at the default rescan_every;
  7. the first run in fresh interpreters that imported what the Agent has loaded before a check runs
     (datadog_checks.base, yaml) and the check, what the run imports or warms up on first use included; and the floor
     in as many fresh interpreters, in turn.
It prints medians and ratios, checks peak memory, and writes results.json and chart.png to --out.
With Go installed it also measures the wire probe against the Go apiserver (tests/wire): one probe with an ECDSA and
an RSA serving certificate, a steady-state run with the probe off, not due, and due at every run, and finding the
listener of an apiserver that holds 3,000 connection fds. (The stand-in apiserver of the rows above does not listen:
a first run on a real node adds one probe.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

from benchmarks.floor import floor
from datadog_checks.base.stubs import aggregator
from datadog_checks.base.stubs import datadog_agent as agent_stub
from datadog_checks.cis_kubernetes import CisKubernetesCheck
from datadog_checks.cis_kubernetes.process_table import scan_processes
from devtools import certs, standin, wire_server

ROOT = Path(__file__).resolve().parent.parent
KUBE_BENCH_AUDIT = '/bin/ps -ef | grep kube-apiserver | grep -v grep'
KUBEADM_MANIFEST = ROOT / 'tests' / 'data' / 'manifests' / 'kubeadm-kube-apiserver.yaml'
MEMORY_LIMIT_MB = 10.0
# The targets (issue 20), each a ratio of medians measured side by side in one run, and the figures before it.
TARGETS = {
    'steady_vs_kube_bench': (1 / 100, "steady run at most 1/100 of kube-bench's audit"),
    'mean_of_40_vs_kube_bench': (1 / 50, "mean of 40 runs (default rescan_every) at most 1/50 of kube-bench's audit"),
    'fresh_first_vs_floor': (2.0, 'first run of a fresh interpreter at most 2 x one pass over /proc'),
}
TARGET_EXTRA_PROCESSES = 2000  # the targets hold on busy nodes: 2,000 extra processes and more
MEMORY_BEFORE_MB = 4.6  # the increase in peak RSS the README gave before issue 20
RUNTIME_LINES_BEFORE = 5195  # lines of datadog_checks/cis_kubernetes before issue 20
PACKAGE = ROOT / 'datadog_checks' / 'cis_kubernetes'


class IdleProcesses:
    """`count` sleeping processes in one process group, killed and reaped on exit."""

    def __init__(self, count: int):
        self.count = count
        self.pids: list[int] = []

    def __enter__(self) -> IdleProcesses:
        sleep = shutil.which('sleep') or '/bin/sleep'
        group = 0
        for _ in range(self.count):
            pid = os.posix_spawn(sleep, ['sleep', '100000'], os.environ, setpgroup=group)
            group = group or pid
            self.pids.append(pid)
        return self

    def __exit__(self, *exc) -> None:
        if self.pids:
            os.killpg(self.pids[0], signal.SIGKILL)
        for pid in self.pids:
            os.waitpid(pid, 0)


def timed(action, repeat: int, before=None) -> list[float]:
    """Seconds each call of `action` took; `before` runs untimed ahead of each call."""
    samples = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def kubeadm_node(workdir: str) -> tuple[list[str], dict]:
    """(argv of the stand-in apiserver, the check's instance) for a node as kubeadm sets one up, the commonest
    self-managed control plane: the apiserver's flags and static pod manifest as kubeadm writes them
    (tests/data/manifests/kubeadm-kube-apiserver.yaml), the client CA and the host's root under `workdir`."""
    ca_file = os.path.join(workdir, 'ca.crt')
    Path(ca_file).write_bytes(certs.valid_ca())
    text = KUBEADM_MANIFEST.read_text().replace(
        '--client-ca-file=/etc/kubernetes/pki/ca.crt', f'--client-ca-file={ca_file}'
    )
    host = os.path.join(workdir, 'host')
    Path(host, 'etc/kubernetes/manifests').mkdir(parents=True)
    Path(host, 'etc/kubernetes/manifests/kube-apiserver.yaml').write_text(text)
    command = yaml.safe_load(text)['spec']['containers'][0]['command']
    return ['/usr/local/bin/kube-apiserver', *command[1:]], {'host_root': host}


def plain_node(workdir: str) -> tuple[list[str], dict]:
    """(argv, instance) for an apiserver with its flags alone (no static pod manifest): kubernetes-the-hard-way,
    or any apiserver run by systemd."""
    ca_file = os.path.join(workdir, 'plain-ca.crt')
    Path(ca_file).write_bytes(certs.valid_ca())
    return ['/usr/local/bin/kube-apiserver', '--secure-port=6443', f'--client-ca-file={ca_file}'], {}


# node -> (how to set it up, the distribution the check must judge it to be)
NODES = {'kubeadm': (kubeadm_node, 'kubeadm'), 'plain': (plain_node, 'kubernetes')}


def new_check(instance: dict | None = None) -> CisKubernetesCheck:
    check = CisKubernetesCheck('cis_kubernetes', {}, [instance or {}])
    check.check_id = 'cis_kubernetes:benchmark'
    return check


def run_checked(check: CisKubernetesCheck) -> None:
    error = check.run()
    if error:
        raise RuntimeError(error)


def clear_submissions() -> None:
    aggregator.reset()
    agent_stub.reset()


def mean_of_runs(runs: int, instance: dict) -> float:
    """Mean seconds of runs 2 to runs+1 of a fresh check at the default rescan_every: what users pay on average,
    the periodic rescans included."""
    check = new_check(instance)
    run_checked(check)
    return statistics.fmean(timed(lambda: run_checked(check), runs, before=clear_submissions))


def measure(
    count: int, repeat: int, scans: int, instance: dict, distribution: str = 'kubeadm', fresh: bool = True
) -> dict:
    """Medians in ms at `count` extra processes; `fresh`: also the first run in fresh interpreters (which import this
    tree's package, whatever this interpreter imported)."""
    with IdleProcesses(count):
        processes = len(psutil.pids())
        steady_check = new_check(instance)
        clear_submissions()
        run_checked(steady_check)  # the first run: discovery and parse happen here
        judged = [(sc.status, sc.tags) for sc in aggregator.service_checks('cis_kubernetes.apiserver.client_ca_file')]
        if len(judged) != 1 or judged[0][0] != 0 or f'kube_distribution:{distribution}' not in judged[0][1]:
            found = [p.label for p in scan_processes('/proc').apiservers]
            raise RuntimeError(f'the stand-in was not judged a passing {distribution} apiserver: {judged}, {found}')
        steady = timed(lambda: run_checked(steady_check), repeat, before=clear_submissions)
        first, least = [], []
        for _ in range(scans):  # alternately: what else the machine does falls on both alike
            least += timed(floor, 1)
            first += timed(lambda: run_checked(new_check(instance)), 1, before=clear_submissions)
        audit = timed(lambda: subprocess.run(KUBE_BENCH_AUDIT, shell=True, capture_output=True), scans)
        naive = timed(lambda: list(psutil.process_iter(['name'])), scans, before=psutil.process_iter.cache_clear)
        means = [mean_of_runs(40, instance) for _ in range(scans)]
        if fresh:
            fresh_first, fresh_floor = fresh_first_runs(max(3, scans // 3), instance)
    ms = {
        name: statistics.median(samples) * 1000
        for name, samples in (
            ('steady_state', steady),
            ('first_run', first),
            ('kube_bench_audit', audit),
            ('psutil_scan', naive),
            ('floor', least),
            ('mean_of_40_runs', means),
        )
    }
    ms['steady_state_mean'] = statistics.fmean(steady) * 1000  # includes the periodic rescans (rescan_every)
    if fresh:
        ms['first_run_fresh_interpreter'], ms['floor_fresh_interpreter'] = fresh_first * 1000, fresh_floor * 1000
    return {'extra_processes': count, 'processes': processes, 'median_ms': ms}


def wire_cost(repeat: int) -> dict:
    """Milliseconds: one probe (ECDSA and RSA serving certificates), and the check's steady-state run without and
    with a due probe, against the Go apiserver on loopback."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from datadog_checks.cis_kubernetes.wire import read_client_ca_names

    workdir = tempfile.mkdtemp(prefix='cis-kubernetes-wire-bench-')
    try:
        binary = wire_server.build(workdir)
        if binary is None:
            return {'skipped': 'Go is not installed'}
        files = {'ca': certs.valid_ca(), 'ecdsa.crt': certs.pem(certs.certificate('kube-apiserver', is_ca=False))}
        files['ecdsa.key'] = certs.private_key_pem()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        files['rsa.crt'] = certs.pem(certs.certificate('kube-apiserver', is_ca=False, key=key))
        files['rsa.key'] = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        for name, data in files.items():
            Path(workdir, name).write_bytes(data)
        ms = {}
        for kind in ('ecdsa', 'rsa'):
            port = wire_server.free_port()
            argv = [binary, f'--secure-port={port}', '--bind-address=127.0.0.1', f'--client-ca-file={workdir}/ca']
            server = wire_server.start(
                [*argv, f'--tls-cert-file={workdir}/{kind}.crt', f'--tls-private-key-file={workdir}/{kind}.key']
            )
            try:
                for _ in range(5):  # warm-up
                    read_client_ca_names('127.0.0.1', port)
                samples = sorted(timed(lambda port=port: read_client_ca_names('127.0.0.1', port), repeat))
                ms[f'probe_{kind}'] = statistics.median(samples) * 1000
                ms[f'probe_{kind}_p90'] = samples[int(len(samples) * 0.9)] * 1000
                if kind == 'ecdsa':
                    for name, instance in (
                        ('steady_probe_off', {'wire_probe': False}),
                        ('steady_probe_not_due', {'wire_probe_interval': 86400}),
                        ('steady_probe_due', {'wire_probe_interval': 0}),
                    ):
                        check = new_check(instance)
                        run_checked(check)
                        ms[name] = statistics.median(timed(lambda c=check: run_checked(c), repeat, clear_submissions))
                        ms[name] *= 1000
            finally:
                server.kill()
                server.wait()
        ms['find_listener_busy'] = busy_listener(binary, workdir, repeat)
        return {'median_ms': ms}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def busy_listener(binary: str, workdir: str, repeat: int) -> float:
    """Milliseconds to find the listener of an apiserver holding 1,500 loopback connections (3,000 socket fds)."""
    from datadog_checks.cis_kubernetes.listeners import find_listener
    from datadog_checks.cis_kubernetes.processes import read_apiserver_process

    port = wire_server.free_port()
    argv = [binary, f'--secure-port={port}', '--bind-address=127.0.0.1', f'--client-ca-file={workdir}/ca']
    argv += [f'--tls-cert-file={workdir}/ecdsa.crt', f'--tls-private-key-file={workdir}/ecdsa.key']
    server = wire_server.start([*argv, '--connections=1500'])
    try:
        process = read_apiserver_process('/proc', server.pid)
        if find_listener('/proc', process).port != port:
            raise RuntimeError('the listener of the busy Go apiserver was not found')
        return statistics.median(timed(lambda: find_listener('/proc', process), repeat)) * 1000
    finally:
        server.kill()
        server.wait()


# A first run as the Agent's first: a fresh interpreter that has imported only datadog_checks.base and the check, so
# the run pays what it imports or warms up on first use. The floor likewise, each in its own fresh interpreter.
FRESH_FIRST_RUN_SCRIPT = """
import json, sys, time
import yaml  # rtloader imports it as it starts, before any check (rtloader/three/three.cpp Three::init)
from datadog_checks.base.stubs import aggregator
from datadog_checks.cis_kubernetes import CisKubernetesCheck
from benchmarks.floor import floor
check = CisKubernetesCheck('cis_kubernetes', {}, [json.loads(sys.argv[2])])  # the base class parses it in a child
check.check_id = 'cis_kubernetes:fresh'
start = time.perf_counter()
error = floor() if sys.argv[1] == 'floor' else check.run()
print(json.dumps(time.perf_counter() - start))
judged = aggregator.service_checks('cis_kubernetes.apiserver.client_ca_file')
assert sys.argv[1] == 'floor' or (not error and len(judged) == 1)
"""


def fresh_first_runs(samples: int, instance: dict) -> tuple[float, float]:
    """Median seconds of the first run in `samples` fresh interpreters, and of the floor in as many others (one of
    each in turn)."""
    times: dict[str, list[float]] = {'check': [], 'floor': []}
    for _ in range(samples):
        for what, samples_of in times.items():
            result = subprocess.run(
                [sys.executable, '-c', FRESH_FIRST_RUN_SCRIPT, what, json.dumps(instance)],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            samples_of.append(json.loads(result.stdout.splitlines()[-1]))
    return statistics.median(times['check']), statistics.median(times['floor'])


# Peak RSS from VmHWM: ru_maxrss would carry over the parent's high-water mark across fork and exec.
PEAK_RSS_SCRIPT = """
import json, sys
import datadog_checks.base
import yaml  # in the Agent before any check: rtloader imports it as it starts (init_stringutils)
judged = None
if sys.argv[1] == 'check':
    from datadog_checks.base.stubs import aggregator
    from datadog_checks.cis_kubernetes import CisKubernetesCheck
    check = CisKubernetesCheck('cis_kubernetes', {}, [json.loads(sys.argv[2])])
    check.check_id = 'cis_kubernetes:memory'
    assert not check.run()
    judged = len(aggregator.service_checks('cis_kubernetes.apiserver.client_ca_file'))
hwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')][0].split()[1]
print(json.dumps([int(hwm), judged]))
"""


def peak_rss_kib(mode: str, instance: dict, root: Path = ROOT) -> int:
    """Peak RSS of a fresh interpreter that imports what the Agent has loaded before any check (datadog_checks.base,
    yaml), and with `check`, also runs the check once (judging the stand-in apiserver: discovery, its static pod
    manifest, the CA file read and parsed, the event); the check's package is the one in `root`."""
    argv = [sys.executable, '-c', PEAK_RSS_SCRIPT, mode, json.dumps(instance)]
    result = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=root)
    rss, judged = json.loads(result.stdout.splitlines()[-1])
    if mode == 'check' and judged != 1:
        raise RuntimeError('the memory run did not judge the stand-in apiserver')
    return rss


def memory(instance: dict, samples: int = 3, root: Path = ROOT) -> dict:
    """Peak RSS with and without the check of `root`, its package's bytecode compiled first, as pip compiles a wheel's
    when it installs it: an interpreter compiling the package from source peaks about 1 MB higher (measured here with
    PYTHONDONTWRITEBYTECODE=1 and stale bytecode), which would make the figure depend on the tree's cache."""
    package = Path(root) / 'datadog_checks' / 'cis_kubernetes'
    subprocess.run([sys.executable, '-m', 'compileall', '-q', str(package)], check=True, capture_output=True)
    base = min(peak_rss_kib('base', instance, root) for _ in range(samples))
    check = max(peak_rss_kib('check', instance, root) for _ in range(samples))
    return {'base_peak_rss_mb': base / 1024, 'check_peak_rss_mb': check / 1024, 'increase_mb': (check - base) / 1024}


def ratios(row: dict) -> dict:
    ms = row['median_ms']
    return {
        'steady_vs_kube_bench': ms['steady_state'] / ms['kube_bench_audit'],
        'steady_vs_psutil': ms['steady_state'] / ms['psutil_scan'],
        'first_vs_kube_bench': ms['first_run'] / ms['kube_bench_audit'],
        'first_vs_psutil': ms['first_run'] / ms['psutil_scan'],
        'first_vs_floor': ms['first_run'] / ms['floor'],
        'fresh_first_vs_floor': ms['first_run_fresh_interpreter'] / ms['floor_fresh_interpreter'],
        'mean_of_40_vs_steady': ms['mean_of_40_runs'] / ms['steady_state'],
        'mean_of_40_vs_kube_bench': ms['mean_of_40_runs'] / ms['kube_bench_audit'],
    }


def runtime_lines() -> int:
    return sum(len(path.read_text().splitlines()) for path in PACKAGE.rglob('*.py'))


def targets(rows: list[dict], mem: dict, lines: int) -> list[tuple[str, bool, str]]:
    """(target, met, the figures) for each target, on every row of TARGET_EXTRA_PROCESSES or more (all, without)."""
    busy = [row for row in rows if row['extra_processes'] >= TARGET_EXTRA_PROCESSES] or rows
    report = []
    for key, (limit, what) in TARGETS.items():
        worst = max(busy, key=lambda row: row['ratios'][key])
        figure = f'worst {worst["ratios"][key]:.4f} ({worst["node"]}, {worst["processes"]:,} processes)'
        report.append((what, worst['ratios'][key] <= limit, f'{figure}, limit {limit:.4f}'))
    report.append(
        (
            'memory no worse than before',
            mem['increase_mb'] <= MEMORY_BEFORE_MB,
            f'+{mem["increase_mb"]:.2f} MB, before +{MEMORY_BEFORE_MB} MB',
        )
    )
    report.append(
        ('runtime package smaller', lines < RUNTIME_LINES_BEFORE, f'{lines:,} lines, before {RUNTIME_LINES_BEFORE:,}')
    )
    return report


def chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use('Agg')
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(8, 5), dpi=110)
    nodes = list(dict.fromkeys(row['node'] for row in rows))
    for node in nodes:
        of_node = [row for row in rows if row['node'] == node]
        counts = [row['processes'] for row in of_node]
        keys = (
            [
                ('kube_bench_audit', "kube-bench's audit (ps -ef | grep)", 's-'),
                ('psutil_scan', "naive psutil.process_iter(['name'])", 'd-'),
                ('first_run', f'cis_kubernetes first run ({node} node)', 'o-'),
                ('floor', 'floor: list /proc and readlink every exe', 'x--'),
                ('mean_of_40_runs', f'cis_kubernetes mean of 40 runs ({node} node)', 'v-'),
                ('steady_state', f'cis_kubernetes steady-state run ({node} node)', '^-'),
            ]
            if node == nodes[0]
            else [('first_run', f'cis_kubernetes first run ({node} node)', 'o:')]
        )
        for key, label, style in keys:
            axes.plot(counts, [row['median_ms'][key] for row in of_node], style, label=label)
    axes.set_xscale('log')
    axes.set_yscale('log')
    axes.set_xlabel('processes on the machine')
    axes.set_ylabel('median time per run (ms, log scale)')
    axes.set_title('Cost of one evaluation against the number of processes')
    axes.grid(True, which='both', alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--counts', default='200,2000,10000', help='extra idle process counts, comma-separated')
    parser.add_argument('--repeat', type=int, default=300, help='steady-state runs per count')
    parser.add_argument('--scans', type=int, default=25, help='repetitions of the full-scan measurements per count')
    parser.add_argument('--nodes', default='kubeadm,plain', help=f'which stand-in nodes, of {", ".join(NODES)}')
    parser.add_argument('--quick', action='store_true', help='few repetitions: a smoke run, not figures to quote')
    parser.add_argument('--out', default=str(ROOT / 'benchmarks' / 'results'), help='folder for results and chart')
    args = parser.parse_args(argv)
    if args.quick:
        args.repeat, args.scans = 20, 3
    counts = [int(c) for c in args.counts.split(',')]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    workdir = tempfile.mkdtemp(prefix='cis-kubernetes-bench-')
    rows, mem = [], None
    try:
        for node in args.nodes.split(','):
            setup, distribution = NODES[node]
            argv, instance = setup(workdir)
            with standin.running(argv):
                for count in counts:
                    row = {'node': node, **measure(count, args.repeat, args.scans, instance, distribution)}
                    row['ratios'] = ratios(row)
                    rows.append(row)
                    ms, r = row['median_ms'], row['ratios']
                    print(
                        f'{node:>7} node, {row["processes"]:>6} processes: steady {ms["steady_state"]:.3f} ms, mean of '
                        f'40 runs {ms["mean_of_40_runs"]:.3f} ms ({r["mean_of_40_vs_steady"]:.2f} x steady), first run '
                        f'{ms["first_run"]:.2f} ms ({r["first_vs_floor"]:.2f} x the floor {ms["floor"]:.2f} ms; in a '
                        f'fresh interpreter {ms["first_run_fresh_interpreter"]:.2f} ms, '
                        f'{r["fresh_first_vs_floor"]:.2f} x), kube-bench audit {ms["kube_bench_audit"]:.1f} ms, '
                        f'psutil scan {ms["psutil_scan"]:.1f} ms',
                        flush=True,
                    )
                if mem is None:  # the first node's
                    mem = memory(instance)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f'peak RSS: datadog_checks.base alone {mem["base_peak_rss_mb"]:.1f} MB, with the check run '
        f'{mem["check_peak_rss_mb"]:.1f} MB: +{mem["increase_mb"]:.1f} MB (limit {MEMORY_LIMIT_MB:.0f} MB)'
    )
    lines = runtime_lines()
    report = targets(rows, mem, lines)
    for what, met, figures in report:
        print(f'target {"met" if met else "MISSED"}: {what}: {figures}')
    wire = wire_cost(args.repeat)
    if 'skipped' in wire:
        print(f'wire probe: skipped ({wire["skipped"]})')
    else:
        w = wire['median_ms']
        print(
            f'wire probe: ECDSA {w["probe_ecdsa"]:.2f} ms (p90 {w["probe_ecdsa_p90"]:.2f}), '
            f'RSA-2048 {w["probe_rsa"]:.2f} ms (p90 {w["probe_rsa_p90"]:.2f}); steady run: '
            f'probe off {w["steady_probe_off"]:.3f} ms, not due {w["steady_probe_not_due"]:.3f} ms, '
            f'due {w["steady_probe_due"]:.3f} ms; listener among 3,000 connection fds found in '
            f'{w["find_listener_busy"]:.3f} ms'
        )
    results = {
        'python': sys.version.split()[0],
        'cpus': os.cpu_count(),
        'rows': rows,
        'memory': mem,
        'runtime_lines': lines,
        'targets': [{'target': what, 'met': met, 'figures': figures} for what, met, figures in report],
        'wire': wire,
        'repeat': args.repeat,
        'scans': args.scans,
    }
    (out / 'results.json').write_text(json.dumps(results, indent=2) + '\n')
    chart(rows, out / 'chart.png')
    print(f'wrote {out / "results.json"} and {out / "chart.png"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
