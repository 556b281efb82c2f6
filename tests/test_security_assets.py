"""The log pipeline and the Cloud SIEM detection rules: valid as Datadog's API models and server rules demand, and
fed by what the check really sends."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from datadog_api_client.v1.model.logs_pipeline import LogsPipeline
from datadog_api_client.v2.model.security_monitoring_standard_rule_create_payload import (
    SecurityMonitoringStandardRuleCreatePayload,
)

from datadog_checks.base.stubs import datadog_agent as agent_stub
from devtools import certs, render_deploy
from tests.conftest import needs_standins, write
from tests.test_assets import strict_model

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = yaml.safe_load((ROOT / 'assets' / 'logs' / 'cis_kubernetes.yaml').read_text())
PIPELINE_TESTS = yaml.safe_load((ROOT / 'assets' / 'logs' / 'cis_kubernetes_tests.yaml').read_text())
RULE_FILES = sorted((ROOT / 'assets' / 'security').glob('*.json'))
WINDOWS = (0, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
QUERY_NAME = re.compile(r'[a-z][a-z0-9_]*')
# The condition grammar the server accepts (Datadog's "create a real-time rule" API schema reference): query names
# compared with non-negative integers (optionally `name * n`), joined with && or ||.
COMPARISON = r'[a-z][a-z0-9_]*(\s*\*\s*\d+)?\s*(>=|<=|>|<)\s*\d+'
CONDITION = re.compile(rf'{COMPARISON}(\s*(&&|\|\|)\s*{COMPARISON})*')
APISERVER = '/usr/local/bin/kube-apiserver'


def api_pipeline(pipeline: dict) -> dict:
    """The integrations format as the Logs Pipelines API spells it: `enabled` is `is_enabled` there."""

    def convert(value):
        if isinstance(value, dict):
            return {('is_enabled' if key == 'enabled' else key): convert(item) for key, item in value.items()}
        if isinstance(value, list):
            return [convert(item) for item in value]
        return value

    return convert(pipeline)


def rule_problems(rule: dict) -> list[str]:
    """What Datadog's server refuses but its API client lets through."""
    problems = []
    strict_model(rule, SecurityMonitoringStandardRuleCreatePayload)
    names = [query['name'] for query in rule['queries']]
    problems += [f'query name {name!r}' for name in names if not QUERY_NAME.fullmatch(name)]
    for case in rule['cases']:
        if not CONDITION.fullmatch(case['condition']):
            problems.append(f'condition {case["condition"]!r}')
        used = set(re.findall(r'[a-z][a-z0-9_]*', case['condition']))
        problems += [f'{name} is not a query' for name in used - set(names)]
    options = rule['options']
    windows = [options['evaluationWindow'], options['keepAlive'], options['maxSignalDuration']]
    if windows != sorted(windows) or not set(windows) <= set(WINDOWS):
        problems.append(f'evaluationWindow <= keepAlive <= maxSignalDuration: {windows}')
    severities = ['critical', 'high', 'medium', 'low', 'info']
    order = [severities.index(case['status']) for case in rule['cases']]
    if order != sorted(order):
        problems.append('cases are evaluated top-down: most severe first')
    for query in rule['queries']:
        if query['aggregation'] == 'count' and (query.get('distinctFields') or query.get('metrics')):
            problems.append('a count has no distinctFields or metrics')
        if 'source:cis_kubernetes' not in query['query']:
            problems.append(f"query {query['name']} does not select the check's logs")
    return problems


@pytest.mark.parametrize('path', RULE_FILES, ids=lambda p: p.name)
def test_detection_rule_is_valid_as_the_api_and_the_server_demand(path):
    rule = json.loads(path.read_text())
    assert rule['type'] == 'log_detection'
    assert rule_problems(rule) == []


MUTATIONS = {
    'unknown key': lambda r: r.update(severity='high'),
    'unknown option': lambda r: r['options'].update(evalWindow=300),
    'bad window': lambda r: r['options'].update(evaluationWindow=120),
    'window order': lambda r: r['options'].update(keepAlive=300),
    'bad status': lambda r: r['cases'][0].update(status='severe'),
    'bad type': lambda r: r.update(type='compliance'),
    'bad query name': lambda r: r['queries'][0].update(name='Failed-Now'),
    'condition with ==': lambda r: r['cases'][0].update(condition=r['queries'][0]['name'] + ' == 1'),
    'condition on no query': lambda r: r['cases'][0].update(condition='nothing > 0'),
    'severity order': lambda r: r['cases'].reverse(),
    'no cases': lambda r: r.pop('cases'),
}


@pytest.mark.parametrize('mutation', MUTATIONS)
@pytest.mark.parametrize('path', RULE_FILES, ids=lambda p: p.name)
def test_mutated_detection_rule_fails_validation(path, mutation):
    rule = json.loads(path.read_text())
    MUTATIONS[mutation](rule)
    try:
        problems = rule_problems(rule)
    except (AssertionError, TypeError) as e:  # refused by the API client's models, or strictly
        problems = [str(e)]
    assert problems


def test_log_pipeline_is_a_valid_logs_pipeline():
    assert set(PIPELINE) == {'id', 'metric_id', 'facets', 'pipeline'}
    assert PIPELINE['id'] == 'cis_kubernetes' and PIPELINE_TESTS['id'] == 'cis_kubernetes'
    strict_model(api_pipeline(PIPELINE['pipeline']), LogsPipeline)
    assert PIPELINE['pipeline']['filter']['query'] == 'source:cis_kubernetes'
    facet_keys = {'groups', 'name', 'path', 'source', 'type', 'facetType', 'description'}
    for facet in PIPELINE['facets']:
        assert set(facet) == facet_keys
        assert facet['facetType'] in {'list', 'range'} and facet['source'] in {'log', 'tag'}
    assert {f['path'] for f in PIPELINE['facets']} >= {'agent_rule_id', 'result', 'data.distribution', 'host'}


def test_mutated_log_pipeline_fails_validation():
    pipeline = copy.deepcopy(PIPELINE['pipeline'])
    pipeline['processors'][0]['type'] = 'category-processr'
    with pytest.raises(AssertionError):
        strict_model(api_pipeline(pipeline), LogsPipeline)
    pipeline = copy.deepcopy(PIPELINE['pipeline'])
    pipeline['processors'][1]['source'] = 'x'  # a status remapper has `sources`
    with pytest.raises(AssertionError):
        strict_model(api_pipeline(pipeline), LogsPipeline)


def run_pipeline(log: dict) -> dict:
    """The pipeline's processors applied to a parsed log, as Datadog applies these three kinds."""
    custom = {key: value for key, value in log.items() if key not in ('message', 'timestamp', 'ddtags')}
    result = {'custom': custom, 'message': log['message'], 'timestamp': log['timestamp']}
    result['tags'] = ['source:LOGS_SOURCE', *log['ddtags'].split(',')]
    for processor in PIPELINE['pipeline']['processors']:
        if processor['type'] == 'category-processor':
            for category in processor['categories']:
                attribute, value = re.fullmatch(r'@([\w.]+):(\S+)', category['filter']['query']).groups()
                if str(_get(custom, attribute)) == value:
                    _set(custom, processor['target'], category['name'])
                    break
        elif processor['type'] == 'status-remapper':
            result['status'] = next(_get(custom, s) for s in processor['sources'] if _get(custom, s) is not None)
        elif processor['type'] == 'message-remapper':
            result['message'] = log[processor['sources'][0]]
    return result


def _get(data: dict, path: str):
    for key in path.split('.'):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _set(data: dict, path: str, value) -> None:
    *parents, last = path.split('.')
    for key in parents:
        data = data.setdefault(key, {})
    data[last] = value


@pytest.mark.parametrize('case', PIPELINE_TESTS['tests'], ids=lambda c: json.loads(c['sample'])['result'])
def test_pipeline_tests_hold_what_the_pipeline_makes_of_each_result(case):
    assert run_pipeline(json.loads(case['sample'])) == case['result']


def keys(value, prefix=''):
    if isinstance(value, dict):
        return {f'{prefix}{k}' for k in value} | {p for k, v in value.items() for p in keys(v, f'{prefix}{k}.')}
    return set()


@needs_standins
def test_every_attribute_the_rules_pipeline_and_samples_use_comes_out_of_the_check_as_deployed(
    make_check, dd_run_check, apiservers, workdir
):
    agent_stub._config['logs_enabled'] = True
    ca = write(f'{workdir}/pki/ca.crt', certs.valid_ca(10))
    apiservers([APISERVER, f'--client-ca-file={ca}'])
    config = yaml.safe_load(render_deploy.CHECK_CONFIG)
    (instance,) = config['instances']
    assert config['logs'] == [{'type': 'integration', 'source': 'cis_kubernetes', 'service': 'cis_kubernetes'}]
    dd_run_check(make_check(instance))
    (log,) = agent_stub._sent_logs['cis_kubernetes:test']
    produced = keys(log)
    for case in PIPELINE_TESTS['tests']:
        sample = json.loads(case['sample'])
        assert keys(sample) - {'data.process.name', 'data.process.pid'} <= produced | {'data.process'}
    queried = set()
    for path in RULE_FILES:
        for query in json.loads(path.read_text())['queries']:
            queried |= set(re.findall(r'@([\w.]+):', query['query']))
        queried |= set(re.findall(r'\{\{@([\w.]+)\}\}', json.loads(path.read_text())['message'])) - {'host'}
    queried |= {f['path'] for f in PIPELINE['facets'] if f['path'] != 'host'}
    assert queried <= produced, queried - produced
