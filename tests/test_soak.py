"""The soak runs in the suite: 10,000 consecutive runs, the apiserver restarting every 100 and its CA rotating.

It runs in a fresh interpreter, as the Agent's would be: in this one, the heap of the tests run before it makes RSS
growth allocator noise of a few MiB, not the check's.
"""

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import needs_standins

ROOT = Path(__file__).resolve().parent.parent
RSS_GROWTH_LIMIT_KIB = 2048  # measured growth is a few hundred KiB of allocator noise; a leak per run is far more


@needs_standins
def test_ten_thousand_runs_with_restarts_and_rotations():
    done = subprocess.run(
        [sys.executable, '-m', 'benchmarks.soak', '--runs', '10000', '--restart-every', '100'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    result = json.loads(done.stdout[done.stdout.index('{') :])
    assert result['wrong_verdicts'] == 0, result
    assert result['restarts'] == 99 and result['restarts_noticed'] == 99
    assert result['rotations'] == 100 and result['rotations_noticed'] == 100
    assert result['status_changes'] == 99
    assert result['events'] == result['status_changes'] + 1  # one per change, and the first evaluation
    assert result['fds_at_end'] == result['fds_after_warmup']
    assert result['rss_growth_kib'] < RSS_GROWTH_LIMIT_KIB, result
    assert done.returncode == 0, done.stderr[-2000:]
