"""Every row of tests/data/process_identities.yaml (what a real node shows in /proc, with its evidence) is a test.

A stand-in is exec'd through a path named as the row's execve path (so the kernel gives it the row's comm, cut at 15
characters), its executable named as the row's exe, with the row's argv or rewritten title; the scan must judge it,
count it as a witness, or ignore it. What a stand-in cannot reproduce (its parent, its cgroup) is tested as a pure
function fed the row. A row added later is tested without new code.
"""

from __future__ import annotations

import os

import pytest

from datadog_checks.cis_kubernetes.distributions.client_ca import detect_distribution
from datadog_checks.cis_kubernetes.flags import effective_flags
from datadog_checks.cis_kubernetes.process_table import look_closer, scan_processes
from datadog_checks.cis_kubernetes.processes import (
    CANDIDATE_NAMES,
    COMM_MAX_LENGTH,
    EMBEDDING_PROGRAMS,
    SUPERVISOR_NAMES,
    WITNESS_PROGRAMS,
    ApiserverProcess,
    identify,
    witness,
)
from devtools import render_identities, standin
from tests.conftest import needs_standins

ROWS = render_identities.load_rows()
BY_ROLE = {role: [row for row in ROWS if row['role'] == role] for role in ('apiserver', 'witness', 'neither')}


def basename(path: str) -> str:
    return path.rsplit('/', 1)[-1]


def ids(rows):
    return [row['id'] for row in rows]


# -- the table itself ------------------------------------------------------------------------------------------


def test_every_row_is_complete_and_cites_evidence():
    required = {'id', 'distribution', 'versions', 'role', 'comm', 'execve', 'exe', 'parent', 'evidence'}
    assert len({row['id'] for row in ROWS}) == len(ROWS)
    for row in ROWS:
        assert required <= set(row), row['id']
        assert ('cmdline' in row) != ('title' in row), row['id']
        assert row['evidence'], row['id']
        assert set(row.get('inferred', [])) <= set(row), row['id']
        assert row['role'] == 'neither' or row.get('expect'), row['id']


@pytest.mark.parametrize('row', ROWS, ids=ids(ROWS))
def test_comm_is_what_the_kernel_makes_of_the_execve_path(row):
    assert row['comm'] == basename(row['execve'])[:COMM_MAX_LENGTH]


def test_the_rendered_page_is_current():
    with open(render_identities.PAGE, encoding='utf-8') as f:
        assert f.read() == render_identities.render(ROWS), 'run: python -m devtools.render_identities'


def test_every_supported_distribution_has_rows():
    distributions = {row['distribution'] for row in ROWS}
    supported = {
        'kubeadm', 'kind', 'minikube', 'kubespray', 'kops', 'rke1', 'rke2', 'talos', 'k0s', 'docker-desktop',
        'kubernetes-the-hard-way', 'hyperkube', 'k3s', 'microk8s', 'openshift', 'openshift-3', 'microshift',
    }  # fmt: skip
    assert supported <= distributions


# -- rules no broader than their rows ---------------------------------------------------------------------------


def test_the_first_filter_admits_every_apiserver_row_and_names_none_without_a_row():
    for row in BY_ROLE['apiserver']:  # by its executable's name, or its comm where a link names it otherwise
        assert 'candidate' in (look_closer(basename(row['exe'])), look_closer(row['comm'])), row['id']
    names = {basename(row['exe']) for row in BY_ROLE['apiserver']} | {row['comm'] for row in BY_ROLE['apiserver']}
    assert names >= CANDIDATE_NAMES


def test_every_embedding_program_rule_has_a_row():
    assert set(EMBEDDING_PROGRAMS) <= {row['comm'] for row in BY_ROLE['apiserver']}


def test_every_witness_rule_has_a_row():
    witnesses = {basename(row['exe']) for row in BY_ROLE['witness']}
    assert witnesses == WITNESS_PROGRAMS | SUPERVISOR_NAMES


# -- pure functions fed the row ---------------------------------------------------------------------------------


@pytest.mark.parametrize('row', ROWS, ids=ids(ROWS))
def test_identity_of_the_row(row):
    argv = render_identities.cmdline_of(row)
    identity = identify(row['comm'], argv, basename(row['exe']))
    if row['role'] == 'apiserver':
        assert identity is not None and identity[0] == row['expect']
        assert identity[2] == ('title' in row)  # arguments hidden exactly when the title was rewritten
    else:
        assert identity is None


@pytest.mark.parametrize('row', ROWS, ids=ids(ROWS))
def test_witness_of_the_row(row):
    seen = witness(row['comm'], render_identities.cmdline_of(row), row.get('cgroup', ''))
    assert seen == (row['expect'] if row['role'] == 'witness' else None)


@pytest.mark.parametrize('row', BY_ROLE['apiserver'], ids=ids(BY_ROLE['apiserver']))
def test_distribution_of_the_row_from_its_flags_and_parent(row, tmp_path):
    kind, args, _ = identify(row['comm'], render_identities.cmdline_of(row), basename(row['exe']))
    process = ApiserverProcess(
        pid=1,
        start_ticks=0,
        name=row['comm'],
        args=args,
        flags=effective_flags(args),
        kind=kind,
        parent=row['parent'],
    )
    for path in [row['node_has']] if row.get('node_has') else []:
        os.makedirs(f'{tmp_path}{path}')
    assert detect_distribution(process, str(tmp_path)) == row['detected_as']


# -- real processes ---------------------------------------------------------------------------------------------

STANDIN_ROWS = [
    row for row in ROWS if not (row['role'] == 'witness' and row.get('cgroup') and 'agent' in row.get('title', ''))
]


@needs_standins
@pytest.mark.parametrize('row', STANDIN_ROWS, ids=ids(STANDIN_ROWS))
def test_stand_in_of_the_row_is_found_as_the_row_says(row):
    argv = render_identities.cmdline_of(row)
    process = standin.start(argv, program=basename(row['execve']), exe=basename(row['exe']))
    try:
        with open(f'/proc/{process.pid}/comm') as f:
            assert f.read().rstrip('\n') == row['comm']  # the stand-in reproduces the row
        assert basename(os.readlink(f'/proc/{process.pid}/exe')).removesuffix(' (deleted)') == basename(row['exe'])
        scan = scan_processes('/proc')
    finally:
        process.stop()
    found = {p.pid: p for p in scan.apiservers}
    if row['role'] == 'apiserver':
        assert process.pid in found and found[process.pid].kind == row['expect']
    else:
        assert process.pid not in found
    if row['role'] == 'witness':
        assert row['expect'] in scan.witnesses
    elif basename(row['exe']) in SUPERVISOR_NAMES:
        assert row['comm'] not in scan.witnesses
