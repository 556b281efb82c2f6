"""Another revision's check measured by this benchmark's harness on the same nodes: before and after, side by side.

    python -m benchmarks.compare a63c41d                 # that revision, then the working tree, at 2,000 processes
    python -m benchmarks.compare a63c41d --counts 2000,10000

For each node of benchmarks.run (a kubeadm one and a plain one) it runs benchmarks.run's measure() in one interpreter
per revision, that revision's package imported first; then the peak memory of each revision's check on the kubeadm
node, as benchmarks.run measures it, in interpreters started in that revision's tree. The fresh-interpreter first run
is not taken: its child interpreters would import this tree's package.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in a child: the package of the revision first on sys.path, then this tree's benchmark harness.
CHILD = """
import json, sys, tempfile
package_root, counts = sys.argv[1], [int(c) for c in sys.argv[2].split(',')]
sys.path.insert(0, package_root)
import datadog_checks.cis_kubernetes
sys.path.remove(package_root)
from benchmarks import run as bench
from devtools import standin
out = {'package': datadog_checks.cis_kubernetes.__file__, 'rows': []}
for node, (setup, distribution) in bench.NODES.items():
    argv, instance = setup(tempfile.mkdtemp(prefix='cis-kubernetes-compare-'))
    with standin.running(argv):
        for count in counts:
            row = bench.measure(count, 200, 25, instance, distribution, fresh=False)
            out['rows'].append({'node': node, **row})
print(json.dumps(out))
"""


def measure(package_root: str, counts: str) -> dict:
    result = subprocess.run(
        [sys.executable, '-c', CHILD, package_root, counts], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return json.loads(result.stdout.splitlines()[-1])


def memory(trees: dict[str, str], samples: int) -> dict[str, dict]:
    """benchmarks.run's memory figure for each tree's check, on one kubeadm stand-in, the trees in turn."""
    from benchmarks import run as bench
    from devtools import standin

    with tempfile.TemporaryDirectory(prefix='cis-kubernetes-compare-') as workdir:
        argv, instance = bench.kubeadm_node(workdir)
        with standin.running(argv):
            rounds = [
                {name: bench.memory(instance, 1, Path(tree)) for name, tree in trees.items()} for _ in range(samples)
            ]
    return {name: {key: statistics.median(r[name][key] for r in rounds) for key in rounds[0][name]} for name in trees}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('revision', help='the git revision to compare with the working tree')
    parser.add_argument('--counts', default='2000', help='extra idle process counts, comma-separated')
    parser.add_argument('--memory-samples', type=int, default=5, help='memory measurements of each revision')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='cis-kubernetes-revision-') as tree:
        subprocess.run(['git', 'worktree', 'add', '--detach', tree, args.revision], cwd=ROOT, check=True)
        try:
            results = {args.revision: measure(tree, args.counts), 'working tree': measure(str(ROOT), args.counts)}
            peaks = memory({args.revision: tree, 'working tree': str(ROOT)}, args.memory_samples)
        finally:
            subprocess.run(['git', 'worktree', 'remove', '--force', tree], cwd=ROOT, check=False)
    for name, result in results.items():
        for row in result['rows']:
            ms = row['median_ms']
            print(
                f'{name:>12} {row["node"]:>7} node, {row["extra_processes"]:>6} extra processes: steady '
                f'{ms["steady_state"]:.3f} ms, mean of 40 runs {ms["mean_of_40_runs"]:.3f} ms '
                f'({ms["mean_of_40_runs"] / ms["steady_state"]:.2f} x steady), first run {ms["first_run"]:.2f} ms '
                f'({ms["first_run"] / ms["floor"]:.2f} x the floor {ms["floor"]:.2f} ms)'
            )
    for name, mem in peaks.items():
        print(
            f'{name:>12} kubeadm node: peak RSS {mem["check_peak_rss_mb"]:.2f} MB, +{mem["increase_mb"]:.2f} MB over '
            f'datadog_checks.base and yaml (medians of {args.memory_samples})'
        )
    return 0


if __name__ == '__main__':
    os.environ.setdefault('PYTHONDONTWRITEBYTECODE', '1')
    sys.exit(main())
