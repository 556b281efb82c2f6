"""The Datadog-side command (python -m datadog_checks.cis_kubernetes.assets) end to end against a stand-in of
Datadog's API on loopback (tests/datadog_api_server.py) that checks every request body with datadog-api-client's own
models, in an organisation that already holds other teams' objects."""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from datadog_api_client.v1.model.monitor import Monitor

from datadog_checks.cis_kubernetes.assets import __main__ as command
from datadog_checks.cis_kubernetes.assets import desired
from datadog_checks.cis_kubernetes.assets.organisation import configuration
from devtools import amalgamate, package_assets
from tests.datadog_api_server import API_KEY, APP_KEY, ApiServer, Fault, Organisation, other_teams
from tests.test_assets import strict_model

ROOT = Path(__file__).resolve().parent.parent
MONITORS = '/api/v1/monitor'


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv('DD_API_KEY', API_KEY)
    monkeypatch.setenv('DD_APP_KEY', APP_KEY)
    monkeypatch.delenv('DD_SITE', raising=False)


@pytest.fixture
def server(keys):
    api = ApiServer(Organisation())
    yield api
    api.close()
    assert api.organisation.refused == [], 'a request body the API models refuse'


def run(server, *argv, retries=2):
    return command.main([*argv, '--api-url', server.url], retries=retries, backoff=0.01)


def objects(server, collection):
    return server.organisation.objects[collection]


def ours(server, collection):
    theirs = other_teams()[collection]
    return {key: value for key, value in objects(server, collection).items() if key not in theirs}


# -- plan and apply -----------------------------------------------------------------------------------------------


def test_plan_writes_nothing_and_says_what_apply_would_do(server, capsys):
    assert run(server, 'plan', '--notify', '@platform-oncall@example.com') == 0
    out = capsys.readouterr().out
    assert server.organisation.writes() == []
    assert out.count('\ncreate ') == 8 and 'nothing was written' in out
    for kind in desired.KINDS:
        assert f'create    {kind} ' in out


def test_apply_creates_every_object_with_the_recipients_and_leaves_other_teams_alone(server):
    before = copy.deepcopy(server.organisation.objects)
    assert run(server, 'apply', '--notify', '@platform-oncall@example.com', '--notify', '@slack-k8s-alerts') == 0
    counts = {c: len(ours(server, c)) for c in ('dashboards', 'monitors', 'pipelines', 'rules', 'filters')}
    assert counts == {'dashboards': 1, 'monitors': 3, 'pipelines': 1, 'rules': 2, 'filters': 1}
    for monitor in ours(server, 'monitors').values():
        assert monitor['message'].endswith('\n\n@platform-oncall@example.com @slack-k8s-alerts')
        assert desired.MANAGED_TAG in monitor['tags']
    (pipeline,) = ours(server, 'pipelines').values()
    assert pipeline['is_enabled'] is True and 'enabled' not in json.dumps(pipeline).replace('is_enabled', '')
    (security_filter,) = ours(server, 'filters').values()
    assert security_filter['attributes']['query'] == 'source:cis_kubernetes'
    assert security_filter['attributes']['filtered_data_type'] == 'logs'
    for collection, items in before.items():  # other teams' objects, the built-in filter included: untouched
        for key, value in items.items():
            assert objects(server, collection)[key] == value
    touched = {path.rsplit('/', 1)[-1] for method, path in server.organisation.writes()}
    assert not touched & {key for items in before.values() for key in items}
    assert all(method == 'POST' for method, _ in server.organisation.writes())


def test_a_second_apply_with_the_same_arguments_writes_nothing(server, capsys):
    assert run(server, 'apply', '--notify', '@slack-k8s-alerts') == 0
    server.organisation.requests.clear()
    assert run(server, 'apply', '--notify', '@slack-k8s-alerts') == 0
    assert server.organisation.writes() == []
    assert 'apply: 0 created, 0 updated, 8 unchanged' in capsys.readouterr().out


def test_a_changed_recipient_updates_the_monitors_in_place(server):
    assert run(server, 'apply', '--notify', '@slack-k8s-alerts') == 0
    ids = set(ours(server, 'monitors'))
    server.organisation.requests.clear()
    assert run(server, 'apply', '--notify', '@pagerduty-platform') == 0
    assert sorted(server.organisation.writes()) == sorted(('PUT', f'{MONITORS}/{i}') for i in ids)
    assert set(ours(server, 'monitors')) == ids
    for monitor in ours(server, 'monitors').values():
        assert monitor['message'].endswith('\n\n@pagerduty-platform') and '@slack-k8s-alerts' not in monitor['message']


def test_an_object_changed_by_hand_is_put_back_by_apply(server, capsys):
    assert run(server, 'apply') == 0
    (dashboard,) = ours(server, 'dashboards').values()
    dashboard['widgets'][0]['definition']['content'] = 'edited in the UI'
    (rule_id,) = [k for k, r in ours(server, 'rules').items() if 'about to expire' in r['name']]
    objects(server, 'rules')[rule_id]['options']['evaluationWindow'] = 300
    server.organisation.requests.clear()
    assert run(server, 'plan') == 0
    out = capsys.readouterr().out
    assert f'update    dashboard "CIS Kubernetes 1.2.31 Overview" (id {dashboard["id"]}): widgets' in out
    assert f'(id {rule_id}): options' in out and server.organisation.writes() == []
    assert run(server, 'apply') == 0
    assert sorted(server.organisation.writes()) == [
        ('PUT', f'/api/v1/dashboard/{dashboard["id"]}'),
        ('PUT', f'/api/v2/security_monitoring/rules/{rule_id}'),
    ]
    assert objects(server, 'rules')[rule_id]['options']['evaluationWindow'] == 1800


def test_an_object_of_the_same_name_made_by_someone_else_is_never_changed(server, capsys):
    # An earlier hand import of the monitor (no mark): apply refuses before writing anything, and says which.
    definition = json.loads((ROOT / 'assets' / 'monitors' / 'control_failing.json').read_text())['definition']
    objects(server, 'monitors')['77'] = {**definition, 'id': 77, 'overall_state': 'OK'}
    before = copy.deepcopy(server.organisation.objects)
    assert run(server, 'apply') == command.CONFLICT_ERROR
    captured = capsys.readouterr()
    assert server.organisation.writes() == [] and server.organisation.objects == before
    assert 'conflict  monitor "[CIS Kubernetes] 1.2.31 failing on' in captured.out and '(id 77)' in captured.out
    assert 'did not create' in captured.out and 'nothing was written' in captured.err


def test_objects_past_the_first_page_are_found(server):
    # 250 other monitors and rules: the command's own are on the third page of each listing.
    organisation = server.organisation
    for number in range(250):
        organisation.objects['monitors'][str(number)] = {
            **organisation.objects['monitors']['1001'],
            'id': number,
            'name': f'[Team {number}] latency',
        }
        organisation.objects['rules'][f'r{number}'] = {
            **organisation.objects['rules']['rule-brute-force'],
            'id': f'r{number}',
            'name': f'Rule {number}',
        }
    assert run(server, 'apply') == 0
    organisation.requests.clear()
    assert run(server, 'apply') == 0
    assert organisation.writes() == []
    assert organisation.requests.count(('GET', MONITORS)) == 3  # pages of 100


def test_tags_listed_in_another_order_are_no_change(server):
    assert run(server, 'apply') == 0
    for monitor in ours(server, 'monitors').values():
        monitor['tags'].reverse()  # as an API that sorts tags would list them
    server.organisation.requests.clear()
    assert run(server, 'apply') == 0
    assert server.organisation.writes() == []
    monitor = next(iter(ours(server, 'monitors').values()))
    monitor['tags'].remove(desired.MANAGED_TAG)  # without its mark it is no longer this command's
    assert run(server, 'plan') == command.CONFLICT_ERROR


# -- errors from the API ------------------------------------------------------------------------------------------


def test_a_403_ends_the_command_saying_what_was_already_applied(server, capsys):
    server.organisation.faults.append(Fault('POST', MONITORS, 403, times=1))
    assert run(server, 'apply') == command.API_ERROR
    err = capsys.readouterr().err
    assert 'HTTP 403' in err and 'application key' in err
    assert 'Already applied (1)' in err and 'created   dashboard "CIS Kubernetes 1.2.31 Overview"' in err
    assert len(ours(server, 'dashboards')) == 1 and ours(server, 'monitors') == {}
    assert run(server, 'apply') == 0  # run again: finishes, without a second dashboard
    assert len(ours(server, 'dashboards')) == 1 and len(ours(server, 'monitors')) == 3


def test_a_429_is_retried_after_the_reset_the_api_gives(server):
    server.organisation.faults.append(Fault('POST', MONITORS, 429, times=1, headers={'X-RateLimit-Reset': '0'}))
    assert run(server, 'apply') == 0
    assert server.organisation.writes().count(('POST', MONITORS)) == 4  # the refused one, then the three
    assert len(ours(server, 'monitors')) == 3


def test_a_429_that_lasts_ends_the_command(server, capsys):
    server.organisation.faults.append(Fault('GET', MONITORS, 429, times=10, headers={'X-RateLimit-Reset': '0'}))
    assert run(server, 'apply', retries=2) == command.API_ERROR
    err = capsys.readouterr().err
    assert 'rate limited' in err and 'HTTP 429' in err and 'Nothing was applied.' in err
    assert server.organisation.requests.count(('GET', MONITORS)) == 3  # the request and its two retries


def test_a_5xx_on_a_create_is_not_retried_so_nothing_is_made_twice(server, capsys):
    server.organisation.faults.append(Fault('POST', '/api/v1/logs/config/pipelines', 502, times=1))
    assert run(server, 'apply') == command.API_ERROR
    err = capsys.readouterr().err
    assert 'the API failed (HTTP 502' in err and 'Already applied (4)' in err
    assert server.organisation.writes().count(('POST', '/api/v1/logs/config/pipelines')) == 1


def test_a_5xx_on_a_read_is_retried(server):
    server.organisation.faults.append(Fault('GET', '/api/v2/security_monitoring/rules', 503, times=1))
    assert run(server, 'plan') == 0


def test_an_unreachable_api_ends_the_command_saying_nothing_was_applied(keys, capsys):
    import socket

    with socket.socket() as unused:  # a loopback port nobody listens on
        unused.bind(('127.0.0.1', 0))
        url = f'http://127.0.0.1:{unused.getsockname()[1]}'
    assert command.main(['plan', '--api-url', url], retries=1, backoff=0.01) == command.API_ERROR
    err = capsys.readouterr().err
    assert f'{url} cannot be reached' in err and 'Nothing was applied.' in err


def test_wrong_keys_are_refused_by_the_api_and_said_so(server, monkeypatch, capsys):
    monkeypatch.setenv('DD_APP_KEY', 'not-the-key')
    assert run(server, 'plan') == command.API_ERROR
    assert 'HTTP 403' in capsys.readouterr().err


def test_missing_keys_and_bad_recipients_are_usage_errors(keys, monkeypatch, capsys):
    monkeypatch.delenv('DD_APP_KEY')
    assert command.main(['plan', '--api-url', 'http://127.0.0.1:9']) == command.USAGE_ERROR
    assert 'set DD_APP_KEY' in capsys.readouterr().err
    monkeypatch.setenv('DD_APP_KEY', APP_KEY)
    assert command.main(['plan', '--api-url', 'http://127.0.0.1:9', '--notify', 'slack-k8s']) == command.USAGE_ERROR
    assert "not 'slack-k8s'" in capsys.readouterr().err


def test_without_its_extra_the_command_says_what_to_install(keys, capsys):
    code = (
        'import sys; sys.modules["datadog_api_client"] = None\n'
        'from datadog_checks.cis_kubernetes.assets.__main__ import main\n'
        'sys.exit(main(["plan", "--api-url", "http://127.0.0.1:9"]))'
    )
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == command.USAGE_ERROR
    assert "pip install 'datadog-cis-kubernetes[assets]'" in done.stderr


# -- the site ------------------------------------------------------------------------------------------------------


def test_the_site_chooses_the_api_and_an_api_url_overrides_it(monkeypatch):
    monkeypatch.delenv('DD_SITE', raising=False)
    assert configuration('k', 'a', 'datadoghq.eu', None).host == 'https://api.datadoghq.eu'
    assert configuration('k', 'a', 'datadoghq.eu', 'http://127.0.0.1:8080/').host == 'http://127.0.0.1:8080'
    assert command.parser().parse_args(['plan']).site == 'datadoghq.com'
    monkeypatch.setenv('DD_SITE', 'us5.datadoghq.com')
    assert command.parser().parse_args(['plan']).site == 'us5.datadoghq.com'
    assert command.parser().parse_args(['plan', '--site', 'ap1.datadoghq.com']).site == 'ap1.datadoghq.com'


def test_the_command_runs_as_python_dash_m_against_the_server(server):
    env = {**os.environ, 'PYTHONPATH': str(ROOT)}
    done = subprocess.run(
        [sys.executable, '-m', 'datadog_checks.cis_kubernetes.assets', 'plan', '--api-url', server.url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert 'plan: 8 to write, 0 unchanged; nothing was written' in done.stdout
    assert 'the monitors will page nobody' in done.stdout


def test_the_console_script_is_declared():
    text = (ROOT / 'setup.py').read_text()
    assert "'cis-kubernetes-assets = datadog_checks.cis_kubernetes.assets.__main__:main'" in text
    assert "'assets': [*DEPS, 'datadog-api-client>=2.62']" in text


# -- the stand-in is strict ----------------------------------------------------------------------------------------


def test_the_server_refuses_unknown_keys_and_unparsed_enums(server):
    monitor = desired.desired_objects()[1].body
    strict_model(monitor, Monitor)
    org = server.organisation
    headers = {'DD-API-KEY': API_KEY, 'DD-APPLICATION-KEY': APP_KEY}
    for broken in (
        {**monitor, 'recipients': ['@x']},  # an unknown key
        {**monitor, 'options': {**monitor['options'], 'notify_nodata': True}},  # a misspelt option
        {**monitor, 'type': 'service chek'},  # an enum value the model does not know
    ):
        status, _, _ = org.answer('POST', MONITORS, {}, headers, json.dumps(broken).encode())
        assert status == 400
    assert len(org.refused) == 3
    org.refused.clear()


def test_the_pipeline_is_converted_from_the_publishing_format_the_api_refuses():
    import yaml
    from datadog_api_client.v1.model.logs_pipeline import LogsPipeline

    published = yaml.safe_load((ROOT / 'assets' / 'logs' / 'cis_kubernetes.yaml').read_text())
    with pytest.raises(AssertionError, match='enabled'):  # `enabled` is no key of the API's pipeline
        strict_model(published['pipeline'], LogsPipeline)
    strict_model(desired.api_pipeline(published), LogsPipeline)


# -- the check never needs datadog-api-client ---------------------------------------------------------------------


def test_the_check_imports_nothing_of_datadog_api_client():
    code = (
        'import sys; sys.modules["datadog_api_client"] = None\n'  # importing it would raise
        'import datadog_checks.cis_kubernetes as m\n'
        'print(m.CisKubernetesCheck.__name__, sorted(n for n in sys.modules if "assets" in n))'
    )
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == 'CisKubernetesCheck []'


def test_the_single_file_leaves_the_assets_command_out():
    assert not [name for name in amalgamate.load_package() if name.split('.')[0] in amalgamate.NOT_THE_CHECK]
    text = (ROOT / 'checks.d' / 'cis_kubernetes.py').read_text()
    tree = ast.parse(text)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names} | {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert not [name for name in imported if name.startswith('datadog_api_client')]
    assert 'datadog_api_client' not in text and 'assets/__main__.py' not in text


def test_the_packaged_asset_copies_are_fresh():
    assert package_assets.stale() == [], 'run ./dev.sh build'


def test_the_readme_setup_starts_with_the_existing_agent_and_the_one_command():
    readme = (ROOT / 'README.md').read_text()
    setup = readme[readme.index('\n## Setup\n') : readme.index('\n### Configuration\n')]
    opening = setup[: setup.index('\n###')]
    assert 'python -m datadog_checks.cis_kubernetes.assets apply' in opening  # named before any install path
    blocks = re.findall(r'```sh\n(.*?)```', setup, re.S)
    first, second = blocks[0], next(b for b in blocks if 'assets apply' in b)
    assert 'helm upgrade <RELEASE> datadog/datadog --reuse-values -f deploy/helm/values-existing-agent.yaml' in first
    assert (
        'kubectl patch datadogagent <NAME> --type merge --patch-file deploy/operator/datadog-agent-patch.yaml' in first
    )
    assert 'python -m datadog_checks.cis_kubernetes.assets apply' in second and '--notify @' in second
    args = second.split('assets apply', 1)[1].replace('\\\n', ' ').split()
    assert command.parser().parse_args(['apply', *args]).notify  # the README's arguments parse
