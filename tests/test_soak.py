"""The soak runs in the suite: 10,000 consecutive runs, the apiserver restarting every 100 and its CA rotating."""

from benchmarks.soak import soak
from tests.conftest import needs_standins

RSS_GROWTH_LIMIT_KIB = 2048  # measured growth is a few hundred KiB of allocator noise; a leak per run is far more


@needs_standins
def test_ten_thousand_runs_with_restarts_and_rotations():
    result = soak(runs=10000, restart_every=100)
    assert result.wrong_verdicts == 0
    assert result.restarts == 99 and result.restarts_noticed == 99
    assert result.rotations == 100 and result.rotations_noticed == 100
    assert result.status_changes == 99
    assert result.events == result.status_changes + 1  # one per change, and the first evaluation
    assert result.fds_at_end == result.fds_after_warmup
    assert result.rss_growth_kib < RSS_GROWTH_LIMIT_KIB, result
