"""The integration's assets, checked against the official datadog-api-client models and the check's real output."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import yaml
from datadog_api_client import Configuration
from datadog_api_client.api_client import ApiClient
from datadog_api_client.model_utils import OpenApiModel
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.monitor import Monitor

from datadog_checks.base.stubs import aggregator as aggregator_stub
from datadog_checks.cis_kubernetes import CisKubernetesCheck
from devtools import certs, render_deploy
from tests.conftest import needs_standins, write

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = json.loads((ROOT / 'manifest.json').read_text())
SERVICE_CHECKS = json.loads((ROOT / 'assets' / 'service_checks.json').read_text())
SERVICE_CHECK = f'{CisKubernetesCheck.__NAMESPACE__}.{CisKubernetesCheck.SERVICE_CHECK}'
METADATA_HEADER = (
    'metric_name,metric_type,interval,unit_name,per_unit_name,description,orientation,integration,short_name,'
    'curated_metric,sample_tags'
)
METRIC_NAME = re.compile(r'cis_kubernetes\.[a-z_.]*[a-z_]')


def metadata_rows() -> list[dict]:
    with open(ROOT / 'metadata.csv', newline='') as f:
        return list(csv.DictReader(f))


METADATA_METRICS = {row['metric_name'] for row in metadata_rows()}
MONITOR_FILES = [ROOT / path for path in MANIFEST['assets']['monitors'].values()]
DASHBOARD_FILES = [ROOT / path for path in MANIFEST['assets']['dashboards'].values()]


def strict_model(payload: dict, model: type) -> OpenApiModel:
    """Deserialize as the client does, then refuse what it tolerates: unknown enum values and unknown keys."""
    parsed = ApiClient(Configuration()).deserialize(json.dumps(payload), (model,), True)
    problems: list[str] = []
    _walk(parsed, '$', problems)
    assert not problems, problems
    return parsed


def _walk(value, path: str, problems: list[str]) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, f'{path}[{i}]', problems)
        return
    if not isinstance(value, OpenApiModel):
        return
    if getattr(value, '_unparsed', False):
        problems.append(f'{path}: not a valid {type(value).__name__}')
    composed = getattr(value, '_composed_instances', None)
    if composed:
        instance = value.get_oneof_instance()
        if instance is None or isinstance(instance, dict):
            problems.append(f'{path}: matches no variant of {type(value).__name__}')
            return
        value = instance
    known = set(getattr(value, 'attribute_map', {}))
    for key, item in value._data_store.items():
        if known and key not in known:
            problems.append(f'{path}.{key}: unknown to {type(value).__name__}')
        _walk(item, f'{path}.{key}', problems)


# -- service checks, metadata, manifest -------------------------------------------------------------------------


def test_service_checks_json_describes_the_checks_service_check():
    (entry,) = SERVICE_CHECKS
    assert set(entry) == {'agent_version', 'integration', 'check', 'statuses', 'groups', 'name', 'description'}
    assert entry['check'] == SERVICE_CHECK
    assert entry['integration'] == MANIFEST['tile']['title']
    assert set(entry['statuses']) == {'ok', 'warning', 'critical', 'unknown'}


def test_metadata_csv_has_datadogs_header_and_known_types():
    assert (ROOT / 'metadata.csv').read_text().splitlines()[0] == METADATA_HEADER
    for row in metadata_rows():
        assert row['metric_type'] == 'gauge'
        assert row['integration'] == 'cis_kubernetes'
        assert row['orientation'] in {'-1', '0', '1'}


def test_manifest_points_at_files_that_exist_and_metrics_that_are_documented():
    assert MANIFEST['manifest_version'] == '2.0.0'
    integration = MANIFEST['assets']['integration']
    paths = [
        integration['configuration']['spec'],
        integration['metrics']['metadata_path'],
        integration['service_checks']['metadata_path'],
        *MANIFEST['assets']['dashboards'].values(),
        *MANIFEST['assets']['monitors'].values(),
        MANIFEST['tile']['changelog'],
    ]
    for path in paths:
        assert (ROOT / path).is_file(), path
    assert integration['metrics']['check'] in METADATA_METRICS
    assert all(name.startswith(integration['metrics']['prefix']) for name in METADATA_METRICS)
    assert integration['source_type_name'] == CisKubernetesCheck.__NAMESPACE__
    assert integration['events']['creates_events'] is True
    readme = (ROOT / 'README.md').read_text()
    for anchor in ('overview', 'configuration', 'support'):
        heading = MANIFEST['tile'][anchor].split('#')[1]
        assert f'## {heading}\n' in readme


def test_readme_is_read_in_minutes_and_puts_an_existing_agent_first():
    """integrations-core's shape for the people who deploy it; design, figures and the suite live in docs/."""
    readme = (ROOT / 'README.md').read_text()
    assert len(readme.splitlines()) <= 350
    overview = readme[: readme.index('\n## Setup\n')]
    assert '| finding on the node | `cis_kubernetes.apiserver.client_ca_file` |' in overview
    setup = readme[readme.index('\n## Setup\n') : readme.index('\n## Data Collected\n')]
    order = ['already runs the Datadog Agent', 'On a new cluster', 'The Datadog side']
    assert [setup.index(words) for words in order] == sorted(setup.index(words) for words in order)
    for page in ('docs/how-it-judges.md', 'docs/testing.md', 'docs/performance.md', 'docs/go-versions.md'):
        assert f']({page})' in readme and (ROOT / page).is_file(), page


def test_readme_has_the_sections_of_a_datadog_integration():
    readme = (ROOT / 'README.md').read_text()
    for heading in (
        '## Overview',
        '## Setup',
        '### Installation',
        '### Configuration',
        '### Validation',
        '## Data Collected',
        '### Metrics',
        '### Events',
        '### Service Checks',
        '## Troubleshooting',
        '## Support',
    ):
        assert f'\n{heading}\n' in readme, heading
    for metric in METADATA_METRICS:
        assert metric in readme


# -- monitors and dashboards ------------------------------------------------------------------------------------


def referenced_names(payload) -> set[str]:
    return set(METRIC_NAME.findall(json.dumps(payload)))


@pytest.mark.parametrize('path', MONITOR_FILES, ids=lambda p: p.stem)
def test_monitor_loads_into_the_official_model(path):
    asset = json.loads(path.read_text())
    assert set(asset) == {'version', 'created_at', 'last_updated_at', 'title', 'description', 'tags', 'definition'}
    assert asset['version'] == 2
    monitor = strict_model(asset['definition'], Monitor)
    assert str(monitor.type) in {'service check', 'query alert'}


@pytest.mark.parametrize('path', MONITOR_FILES, ids=lambda p: p.stem)
def test_monitor_references_only_what_the_check_sends(path):
    definition = json.loads(path.read_text())['definition']
    names = referenced_names(definition) - {'cis_kubernetes.apiserver.client_ca_file'}
    assert names <= METADATA_METRICS
    if definition['type'] == 'service check':
        assert definition['query'].startswith(f'"{SERVICE_CHECK}"')
    grouped_by = re.findall(r'by \{([^}]*)\}', definition['query'])
    for group in grouped_by:
        assert set(group.split(',')) <= {'host', 'client_ca_file'}


def test_monitors_cover_failure_expiry_and_silence():
    definitions = [json.loads(path.read_text())['definition'] for path in MONITOR_FILES]
    assert any(d['type'] == 'service check' and '.by("host")' in d['query'] for d in definitions)
    assert any('client_ca.days_left' in d['query'] for d in definitions)
    assert any(d['options'].get('notify_no_data') for d in definitions)
    for d in definitions:
        assert '/dashboard/' in d['message']


@pytest.mark.parametrize('path', DASHBOARD_FILES, ids=lambda p: p.stem)
def test_dashboard_loads_into_the_official_model(path):
    payload = json.loads(path.read_text())
    dashboard = strict_model(payload, Dashboard)
    assert {variable.prefix for variable in dashboard.template_variables} == {'kube_cluster_name', 'host'}


@pytest.mark.parametrize('path', DASHBOARD_FILES, ids=lambda p: p.stem)
def test_dashboard_references_only_what_the_check_sends(path):
    payload = json.loads(path.read_text())
    assert referenced_names(payload) - {SERVICE_CHECK} <= METADATA_METRICS
    widgets = [widget['definition'] for widget in payload['widgets']]
    checks = [w['check'] for w in widgets if w['type'] == 'check_status']
    assert checks == [SERVICE_CHECK]
    streams = [w for w in widgets if w['type'] == 'list_stream']
    assert streams and all('source:cis_kubernetes' in w['requests'][0]['query']['query_string'] for w in streams)
    for tag in re.findall(r'by \{([^}]*)\}', json.dumps(payload)):
        assert set(tag.split(',')) <= {
            'host',
            'client_ca_file',
            'wire_result',
        }  # tags the check sends on the grouped metric


def test_dashboard_shows_what_a_security_engineer_needs():
    payload = json.loads(DASHBOARD_FILES[0].read_text())
    titles = ' | '.join(w['definition'].get('title', '') for w in payload['widgets']).lower()
    for words in ('passing now', 'failing now', 'over time', 'failing hosts', 'why hosts fail', 'days', 'events'):
        assert words in titles, words


# -- the check's real output against the assets -----------------------------------------------------------------


@needs_standins
def test_every_metric_the_check_sends_is_in_metadata_and_every_documented_one_is_sent(
    make_check, dd_run_check, apiservers, workdir
):
    ca = write(f'{workdir}/ca.crt', certs.valid_ca())
    apiservers(['/usr/local/bin/kube-apiserver', f'--client-ca-file={ca}'])
    aggregator_stub.reset()
    dd_run_check(make_check())
    sent = set(aggregator_stub._metrics)
    assert sent == METADATA_METRICS
    assert set(aggregator_stub._service_checks) == {entry['check'] for entry in SERVICE_CHECKS}
    for metric in aggregator_stub.metrics('cis_kubernetes.apiserver.client_ca.days_left'):
        assert any(tag.startswith('client_ca_file:') for tag in metric.tags)


def referenced_tag_keys() -> set[str]:
    """Tag keys the dashboards and monitors group, filter or template by."""
    keys = set()
    for path in [*DASHBOARD_FILES, *MONITOR_FILES]:
        text = path.read_text()
        for group in re.findall(r'by \{([^}]*)\}', text):
            keys |= set(group.split(','))
        keys |= set(re.findall(r'\b(compliance_status|kube_distribution|verdict_source):', text))
        keys |= {v['prefix'] for v in json.loads(text).get('template_variables', [])}
        keys |= {m.split('.')[0] for m in re.findall(r'\{\{([a-z_]+)\.name\}\}', text)}
    return keys


@needs_standins
def test_every_tag_the_assets_reference_is_in_the_checks_output(make_check, dd_run_check, apiservers, workdir):
    ca = write(f'{workdir}/ca.crt', certs.valid_ca())
    apiservers(['/usr/local/bin/kube-apiserver', f'--client-ca-file={ca}'])
    instance = yaml.safe_load(render_deploy.CHECK_CONFIG)['instances'][0]  # the configuration deploy/ ships
    aggregator_stub.reset()
    dd_run_check(make_check(instance))
    submissions = [*aggregator_stub.service_checks(SERVICE_CHECK)]
    submissions += [m for name in aggregator_stub._metrics for m in aggregator_stub.metrics(name)]
    sent = {tag.split(':', 1)[0] for s in submissions for tag in s.tags}
    sent |= {tag.split(':', 1)[0] for event in aggregator_stub.events for tag in event['tags']}
    sent.add('host')  # every submission carries the host
    assert referenced_tag_keys() <= sent, referenced_tag_keys() - sent


# -- deployment -------------------------------------------------------------------------------------------------

TOLERATION_KEYS = {'key', 'operator', 'value', 'effect', 'tolerationSeconds'}
LINUX_CAPABILITIES = {'SYS_PTRACE', 'DAC_READ_SEARCH', 'DAC_OVERRIDE', 'SYS_ADMIN', 'NET_ADMIN'}


def test_deploy_files_are_rendered_from_the_shipped_check():
    assert render_deploy.main(['--check']) == 0, 'run: python -m devtools.render_deploy'


def check_file() -> str:
    return (ROOT / 'checks.d' / 'cis_kubernetes.py').read_text()


def assert_valid_tolerations(tolerations):
    assert any(t['key'] == 'node-role.kubernetes.io/control-plane' for t in tolerations)
    for toleration in tolerations:
        assert set(toleration) <= TOLERATION_KEYS
        assert toleration['operator'] in {'Exists', 'Equal'}
        assert toleration['effect'] in {'NoSchedule', 'PreferNoSchedule', 'NoExecute'}


def assert_check_config(text: str):
    config = yaml.safe_load(text)
    assert set(config) == {'init_config', 'instances', 'logs'}
    assert len(config['instances']) == 1


def test_helm_values_embed_the_check_and_run_it_on_control_plane_nodes():
    values = yaml.safe_load((ROOT / 'deploy' / 'helm' / 'values.yaml').read_text())
    values['datadog'].update(yaml.safe_load((ROOT / 'deploy' / 'helm' / 'checksd.yaml').read_text())['datadog'])
    # The chart renders checksd through tpl: the file is the check with every "{{" escaped (tests/test_deploy.py
    # renders it as Helm does and compares byte for byte).
    assert values['datadog']['checksd']['cis_kubernetes.py'] == render_deploy.helm_literal(check_file())
    assert_check_config(values['datadog']['confd']['cis_kubernetes.yaml'])
    assert values['datadog']['useHostPID'] is True
    assert_valid_tolerations(values['agents']['tolerations'])
    capabilities = values['agents']['containers']['agent']['securityContext']['capabilities']['add']
    assert set(capabilities) <= LINUX_CAPABILITIES and 'SYS_PTRACE' in capabilities


def test_operator_resource_is_a_datadog_agent_embedding_the_check():
    operator = ROOT / 'deploy' / 'operator'
    documents = [
        *yaml.safe_load_all((operator / 'cis-kubernetes-configmap.yaml').read_text()),
        *yaml.safe_load_all((operator / 'datadog-agent.yaml').read_text()),
    ]
    (resource,) = [d for d in documents if d['kind'] == 'DatadogAgent']
    (configmap,) = [d for d in documents if d['kind'] == 'ConfigMap']
    assert resource['apiVersion'] == 'datadoghq.com/v2alpha1'
    assert re.fullmatch(r'[a-z0-9]([-a-z0-9]*[a-z0-9])?', resource['metadata']['name'])
    assert re.fullmatch(r'[a-z0-9]([-a-z0-9]*[a-z0-9])?', configmap['metadata']['name'])
    assert set(resource['spec']) == {'global', 'features', 'override'}
    assert resource['spec']['features'] == {'logCollection': {'enabled': True, 'containerCollectAll': False}}
    node_agent = resource['spec']['override']['nodeAgent']
    assert set(node_agent) <= {'hostPID', 'tolerations', 'containers', 'extraConfd', 'extraChecksd', 'volumes'}
    assert node_agent['hostPID'] is True
    assert node_agent['extraChecksd']['configMap']['name'] == configmap['metadata']['name']
    assert configmap['data']['cis_kubernetes.py'] == check_file()
    assert node_agent['extraConfd']['configMap']['name'] == configmap['metadata']['name']
    assert_check_config(configmap['data']['cis_kubernetes.yaml'])
    assert_valid_tolerations(node_agent['tolerations'])
    assert set(node_agent['containers']) == {'agent'}
    credentials = resource['spec']['global']['credentials']['apiSecret']
    assert set(credentials) == {'secretName', 'keyName'}
