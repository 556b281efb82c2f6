"""The benchmark command runs end to end (a smoke run: figures come from `python -m benchmarks.run`)."""

import json

from benchmarks import run as benchmark
from tests.conftest import needs_standins


@needs_standins
def test_benchmark_smoke_run_writes_results_and_chart(tmp_path, capsys):
    assert benchmark.main(['--counts', '20', '--quick', '--out', str(tmp_path)]) == 0
    results = json.loads((tmp_path / 'results.json').read_text())
    assert [(row['node'], row['extra_processes']) for row in results['rows']] == [('kubeadm', 20), ('plain', 20)]
    row = results['rows'][0]
    assert set(row['median_ms']) >= {
        'steady_state',
        'first_run',
        'kube_bench_audit',
        'psutil_scan',
        'floor',
        'mean_of_40_runs',
        'first_run_fresh_interpreter',
        'floor_fresh_interpreter',
    }
    assert all(value > 0 for value in row['median_ms'].values())
    assert set(row['ratios']) == {
        'steady_vs_kube_bench',
        'steady_vs_psutil',
        'first_vs_kube_bench',
        'first_vs_psutil',
        'first_vs_floor',
        'mean_of_40_vs_steady',
        'fresh_first_vs_floor',
        'mean_of_40_vs_kube_bench',
    }
    assert [target['target'] for target in results['targets']] == [
        *(what for _, what in benchmark.TARGETS.values()),
        'memory no worse than before',
        'runtime package smaller',
    ]
    assert results['runtime_lines'] == benchmark.runtime_lines() > 0
    assert results['memory']['check_peak_rss_mb'] > 0
    assert (tmp_path / 'chart.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert 'processes: steady' in capsys.readouterr().out
    wire = results['wire']
    if 'skipped' not in wire:
        wanted = {'probe_ecdsa', 'probe_rsa', 'steady_probe_off', 'steady_probe_due', 'find_listener_busy'}
        assert set(wire['median_ms']) >= wanted
        assert all(value > 0 for value in wire['median_ms'].values())


@needs_standins
def test_compare_measures_another_revision_beside_the_working_tree(capsys):
    from benchmarks import compare

    assert compare.main(['HEAD', '--counts', '10', '--memory-samples', '1']) == 0
    out = capsys.readouterr().out.splitlines()
    lines = [line for line in out if 'extra processes' in line]
    assert [line.split()[0] for line in lines] == ['HEAD', 'HEAD', 'working', 'working']
    assert all('x the floor' in line for line in lines)
    peaks = [line for line in out if 'peak RSS' in line]
    assert [line.split()[0] for line in peaks] == ['HEAD', 'working']
    assert all(float(line.split('+')[1].split()[0]) > 0 for line in peaks)
