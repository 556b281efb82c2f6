"""deploy/ against the real Datadog Helm chart and the real Datadog Operator, as far as a test can reach them.

tests/data/deploy/ holds the chart's own files (values.yaml, values.schema.json, the templates that embed
datadog.checksd/confd, mount the Agent's run directory and check datadog.clusterName) and the Operator's DatadogAgent
CRD schema, at the commits SOURCES.json names (copied by `python -m devtools.vendor_deploy_refs`). Helm's rendering is
reproduced by tests/oracle/helm_tpl.go: Go's text/template with what Helm's engine adds around it (`tpl`,
`required`, missingkey=zero, "<no value>" deleted); .ci/run installs Go. No `helm` binary is packaged by Debian or
PyPI, so none is run here.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from datadog_checks.base.stubs import datadog_agent
from devtools import certs, render_deploy
from tests.conftest import needs_standins, write

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / 'data' / 'deploy'
CHART = DATA / 'helm'
SOURCES = json.loads((DATA / 'SOURCES.json').read_text())
HELM_TPL = Path(__file__).resolve().parent / 'oracle' / 'helm_tpl.go'
CLUSTER = 'prod-eu1.example_2'  # what the chart's check-cluster-name accepts: dots, hyphens, underscores


def check_file() -> str:
    return (ROOT / 'checks.d' / 'cis_kubernetes.py').read_text()


def helm_file(name: str) -> dict:
    return yaml.safe_load((ROOT / 'deploy' / 'helm' / name).read_text())


def shipped_values() -> dict:
    """`-f deploy/helm/values.yaml -f deploy/helm/checksd.yaml`, as Helm merges the two."""
    return coalesce(helm_file('values.yaml'), helm_file('checksd.yaml'))


OPERATOR_FILES = ('cis-kubernetes-configmap.yaml', 'datadog-agent.yaml')  # the full example: the ConfigMap first


def operator_documents() -> dict[str, dict]:
    documents = [
        document
        for name in OPERATOR_FILES
        for document in yaml.safe_load_all((ROOT / 'deploy' / 'operator' / name).read_text())
    ]
    kinds = {document['kind']: document for document in documents}
    assert len(kinds) == len(documents)
    return kinds


@functools.cache
def _chart_defaults() -> dict:
    return yaml.safe_load((CHART / 'values.yaml').read_text())


def chart_defaults() -> dict:
    return copy.deepcopy(_chart_defaults())


def coalesce(defaults: dict, overrides: dict) -> dict:
    """Helm's merge of -f/--set values over the chart's: maps merge key by key, anything else is replaced."""
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def install_values(cluster_name: str | None = CLUSTER, extra: dict | None = None) -> dict:
    """What the chart's templates see after `helm install -f deploy/helm/values.yaml -f deploy/helm/checksd.yaml
    --set datadog.clusterName=`."""
    values = coalesce(chart_defaults(), shipped_values())
    if extra:
        values = coalesce(values, extra)
    if cluster_name is not None:
        values['datadog']['clusterName'] = cluster_name
    return values


# -- Helm's rendering, in Go --------------------------------------------------------------------------------------


class HelmTpl:
    def __init__(self, binary: str):
        self.binary = binary

    def render(self, templates: dict[str, str], execute: str, values: dict) -> tuple[bool, str]:
        request = json.dumps({'templates': templates, 'execute': execute, 'values': values})
        done = subprocess.run([self.binary], input=request, capture_output=True, text=True, timeout=60)
        return done.returncode == 0, done.stdout if done.returncode == 0 else done.stderr

    def tpl_to_yaml(self, mapping: dict[str, str], values: dict, style: str | None = None) -> dict:
        """`tpl (toYaml MAP) .` as the chart's checksd-configmap.yaml and confd-configmap.yaml do, back as a map.

        toYaml is Helm's (sigs.k8s.io/yaml); which scalar style it picks does not matter to the escaping, so the test
        runs the styles YAML has for a multi-line string: plain/literal (PyYAML's choice), literal, double-quoted."""
        text = yaml.dump(mapping, default_style=style, width=1 << 20, allow_unicode=True)
        ok, out = self.render({'datadog/templates/x.yaml': text}, 'datadog/templates/x.yaml', values)
        assert ok, out
        return yaml.safe_load(out)


@pytest.fixture(scope='module')
def helm(tmp_path_factory):
    if shutil.which('go') is None:
        pytest.skip('needs Go (Debian: golang-go), as .ci/run installs')
    out = tmp_path_factory.mktemp('helm_tpl')
    env = {**os.environ, 'GO111MODULE': 'off', 'GOCACHE': str(out / 'cache')}
    subprocess.run(['go', 'build', '-o', str(out / 'helm_tpl'), str(HELM_TPL)], check=True, env=env)
    return HelmTpl(str(out / 'helm_tpl'))


def chart_template(name: str) -> str:
    return (CHART / name).read_text()


def chart_define(name: str) -> str:
    """One `define` block of the chart's _helpers.tpl, as the chart has it."""
    text = chart_template('_helpers.tpl')
    start = text.index(f'{{{{- define "{name}" }}}}')
    end = text.index('{{- end -}}\n\n', start) + len('{{- end -}}\n')  # the define's own end, then a blank line
    return text[start:end]


# -- the chart embeds datadog.checksd / datadog.confd through tpl ------------------------------------------------


def test_the_vendored_chart_passes_checksd_and_confd_through_tpl():
    # What makes braces in the check file matter: charts/datadog/templates/checksd-configmap.yaml and
    # confd-configmap.yaml at the vendored commit render the values with Helm's tpl.
    assert '{{ tpl (toYaml .Values.datadog.checksd) . | indent 2 }}' in chart_template('checksd-configmap.yaml')
    assert '{{ tpl (toYaml .Values.datadog.confd) . | indent 2 }}' in chart_template('confd-configmap.yaml')
    assert SOURCES['helm']['commit'] == '79f7c74fd2525288125d943f48b810431dbc8857'


@pytest.mark.parametrize('style', [None, '|', '"'])
def test_helm_renders_the_check_file_byte_for_byte(helm, style):
    rendered = helm.tpl_to_yaml(shipped_values()['datadog']['checksd'], install_values(), style)
    assert rendered == {'cis_kubernetes.py': check_file()}


BRACED_SOURCES = [
    'x = "{{"\n',
    'x = "{{ .Values.datadog.clusterName }}"\n',
    'x = "{{- fail \\"boom\\" }}"  # }}\n',
    'd = {"a": {"b": {}}}\nprint(f"{{x}}")\n',
    '{{{{ `raw` }}}}\n{{/* comment */}}\n',
    '"{{`{{`}}" is how the values file writes {{\n',
    'trailing brace {',
    'x = "\\t{{\\u00e9}}"\n',
]


@pytest.mark.parametrize('source', BRACED_SOURCES)
@pytest.mark.parametrize('style', [None, '"'])
def test_braces_in_the_check_file_never_break_the_chart(helm, source, style):
    values_text = render_deploy.helm_checksd(source)
    checksd = yaml.safe_load(values_text)['datadog']['checksd']
    assert helm.tpl_to_yaml(checksd, install_values(), style) == {'cis_kubernetes.py': source}


def test_random_text_of_template_characters_survives_the_chart(helm):
    # A seeded sample of texts made of what text/template and YAML treat specially, each through the escaping and
    # the chart's tpl (in the two YAML styles toYaml uses for multi-line strings).
    rng = random.Random(1231)
    values = {'datadog': {'clusterName': CLUSTER}}  # the text reads no value: the smallest context keeps this quick
    alphabet = ['{', '{{', '}', '}}', '`', '"', "'", '\\', '-', ' ', '\n', '\t', '/*', '*/', '.', '$', '|', 'a', 'é']
    for _ in range(60):
        source = ''.join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        if '<no value>' in source:
            continue
        checksd = yaml.safe_load(render_deploy.helm_checksd(source))['datadog']['checksd']
        for style in (None, '"'):
            assert helm.tpl_to_yaml(checksd, values, style) == {'cis_kubernetes.py': source}, source


def test_without_the_escaping_braces_would_break_the_chart(helm):
    # The test above can fail: the same pipeline on the unescaped text errors or changes the file.
    for source in ('x = "{{ .Values.datadog.clusterName }}"\n', 'x = "{{- fail \\"boom\\" }}"\n', 'x = "{{"\n'):
        text = yaml.dump({'cis_kubernetes.py': source}, width=1 << 20)
        ok, out = helm.render({'t': text}, 't', install_values())
        assert not ok or yaml.safe_load(out) != {'cis_kubernetes.py': source}


def test_helm_deletes_no_value_so_the_render_refuses_it(helm):
    ok, out = helm.render({'t': 'a <no value> b'}, 't', {})
    assert ok and out == 'a  b'  # what Helm's engine does to every rendered template
    with pytest.raises(ValueError, match='no value'):
        render_deploy.helm_checksd('x = "<no value>"\n')
    render_deploy.helm_checksd(check_file())  # the shipped check holds none


# -- the cluster name, given once ---------------------------------------------------------------------------------


def test_the_chart_refuses_the_old_placeholder_and_accepts_a_real_name(helm):
    # The chart's own check-cluster-name (charts/datadog/templates/_helpers.tpl), executed as Helm does: the
    # placeholder the values file used to ship fails every install.
    define = {'_helpers.tpl': chart_define('check-cluster-name')}
    ok, out = helm.render(define, 'check-cluster-name', {'datadog': {'clusterName': '<CLUSTER_NAME>'}})
    assert not ok and 'clusterName' in out
    ok, out = helm.render(define, 'check-cluster-name', install_values())
    assert ok, out


def test_the_shipped_values_leave_the_cluster_name_to_the_install_command():
    assert 'clusterName' not in shipped_values()['datadog']
    readme = re.sub(r'\\\n\s*', '', (ROOT / 'README.md').read_text())  # continued lines joined
    command = 'helm install datadog-agent datadog/datadog -f deploy/helm/values.yaml -f deploy/helm/checksd.yaml'
    assert f'{command} --set datadog.clusterName=' in readme


@pytest.mark.parametrize('style', [None, '|', '"'])
def test_the_checks_cluster_tag_is_the_name_given_to_the_chart(helm, style):
    confd = helm.tpl_to_yaml(shipped_values()['datadog']['confd'], install_values(), style)
    config = yaml.safe_load(confd['cis_kubernetes.yaml'])
    assert config['instances'][0]['tags'] == [f'kube_cluster_name:{CLUSTER}']
    # DD_CLUSTER_NAME, which the chart sets from the same value (_components-common-env.yaml: tpl of clusterName)
    ok, out = helm.render({'t': '{{ tpl .Values.datadog.clusterName . }}'}, 't', install_values())
    assert ok and out == CLUSTER


def test_helm_refuses_to_install_without_a_cluster_name(helm):
    text = yaml.dump(shipped_values()['datadog']['confd'], width=1 << 20)
    ok, out = helm.render({'t': text}, 't', install_values(cluster_name=None))
    assert not ok and 'set datadog.clusterName' in out
    ok, out = helm.render({'t': text}, 't', install_values(cluster_name=''))
    assert not ok and 'set datadog.clusterName' in out


# -- every value the file sets is one the chart has ---------------------------------------------------------------


def node_agent_schema() -> dict:
    return operator_schema()['properties']['spec']['properties']['override']['additionalProperties']['properties']


# Chart values that are Kubernetes objects (the chart's values.yaml says so in their comments and its templates copy
# them with toYaml): checked against the same Kubernetes types in the Operator's CRD, which are strict.
def kubernetes_schemas() -> dict[str, dict]:
    node_agent = node_agent_schema()
    agent = node_agent['containers']['additionalProperties']['properties']
    return {
        'agents.containers.agent.securityContext': agent['securityContext'],
        'agents.volumes': node_agent['volumes'],
        'agents.volumeMounts': agent['volumeMounts'],
        'agents.tolerations': node_agent['tolerations'],
        'agents.podAnnotations': node_agent['annotations'],
    }


def _set_paths(values, chart, path=()):
    """Dotted paths the shipped values set, each checked against the chart's defaults down to where the chart's
    value is free-form (an empty map, a list) or a Kubernetes object (then against its Kubernetes schema)."""
    kubernetes = kubernetes_schemas()
    for key, value in values.items():
        dotted = '.'.join((*path, key))
        assert isinstance(chart, dict) and key in chart, f'{dotted} is not a value of the chart'
        if dotted in kubernetes:
            jsonschema.validate(value, kubernetes[dotted], cls=jsonschema.Draft7Validator)
            yield dotted
        elif isinstance(value, dict) and isinstance(chart[key], dict) and chart[key]:
            yield from _set_paths(value, chart[key], (*path, key))
        else:
            yield dotted


def test_every_key_the_helm_values_set_exists_in_the_charts_values_yaml():
    paths = set(_set_paths(shipped_values(), chart_defaults()))
    assert {'datadog.checksd', 'datadog.confd', 'agents.volumes', 'agents.volumeMounts'} <= paths
    with pytest.raises(AssertionError, match='not a value of the chart'):
        list(_set_paths({'agents': {'volumeMount': []}}, chart_defaults()))
    with pytest.raises(jsonschema.ValidationError):  # a misspelt Kubernetes field
        list(_set_paths({'agents': {'volumeMounts': [{'name': 'x', 'mountpath': '/x'}]}}, chart_defaults()))


def test_the_installed_values_meet_the_charts_values_schema():
    # Helm validates the coalesced values against the chart's values.schema.json before rendering
    # (pkg/engine/engine.go updateRenderValues).
    schema = json.loads((CHART / 'values.schema.json').read_text())
    jsonschema.validate(install_values(), schema, cls=jsonschema.Draft7Validator)
    with pytest.raises(jsonschema.ValidationError):  # the schema does bite
        jsonschema.validate(
            install_values(extra={'registryMigrationMode': 'sometimes'}), schema, cls=jsonschema.Draft7Validator
        )


# -- the Agent's run directory survives container restarts --------------------------------------------------------

RUN_PATH_MOUNT = re.compile(
    r'\{\{- if or \.Values\.datadog\.logs\.enabled \.Values\.datadog\.logsEnabled \}\}\n'
    r'    - name: \{\{ include "datadog\.agentRunVolumeName" \. \}\}\n'
    r'      mountPath: /opt/datadog-agent/run\n'
)
RUN_PATH_VOLUME = re.compile(
    r'\{\{- if or \.Values\.datadog\.logs\.enabled \.Values\.datadog\.logsEnabled [^\n]*\}\}\n'
    r'- hostPath:\n    path: \{\{ template "datadog\.hostMountRoot" \. \}\}/logs\n'
    r'  name: \{\{ include "datadog\.agentRunVolumeName" \. \}\}\n'
    r'\{\{- else \}\}\n- name: datadogrun\n  emptyDir: \{\}\n'
)


def agent_file_for_key(run_path: str, key: str) -> str:
    """Where the Agent stores write_persistent_cache(key): DataDog/datadog-agent@17327f73
    pkg/persistentcache/persistentcache.go getFileForKey (split at the first ':', the first part a directory,
    characters outside [a-zA-Z0-9_-] removed from both parts)."""
    parts = key.split(':', 1)
    clean = [re.sub(r'[^a-zA-Z0-9_-]', '', part) for part in parts]
    return os.path.join(run_path, *clean)


def test_the_chart_keeps_the_run_directory_only_with_log_collection():
    # The premise, read in the chart's own templates: /opt/datadog-agent/run is a host directory only when logs are
    # enabled, an emptyDir (lost with the container) otherwise; the shipped values leave logs as the chart has them.
    assert RUN_PATH_MOUNT.search(chart_template('_container-agent.yaml'))
    assert RUN_PATH_VOLUME.search(chart_template('_daemonset-volumes-linux.yaml'))
    defaults = chart_defaults()
    assert not defaults['datadog']['logs']['enabled'] and not defaults['datadog'].get('logsEnabled')
    # The shipped values turn log collection on for the check's finding logs (issue 11), and only that: containers'
    # logs stay uncollected. The check's own state directory is kept on the host either way (the mount below).
    assert shipped_values()['datadog']['logs'] == {'enabled': True, 'containerCollectAll': False}


def chart_mount_paths() -> set[str]:
    return set(re.findall(r'mountPath: (\S+)', chart_template('_container-agent.yaml')))


def chart_volume_names() -> set[str]:
    return set(re.findall(r'name: ([a-z0-9-]+)\s*$', chart_template('_daemonset-volumes-linux.yaml'), re.M))


def assert_state_kept_on_the_host(volumes: list[dict], mounts: list[dict]):
    (volume,) = [v for v in volumes if v['name'] == render_deploy.STATE_VOLUME['name']]
    (mount,) = [m for m in mounts if m['name'] == volume['name']]
    assert volume['hostPath']['type'] == 'DirectoryOrCreate'
    assert volume['hostPath']['path'].startswith('/var/lib/datadog-agent/')
    assert not mount.get('readOnly')
    return mount['mountPath']


@needs_standins
@pytest.mark.parametrize('check_id', ['cis_kubernetes:6d1f0c2ab34e5f60', 'cis_kubernetes:prod api:6d1f0c2ab34e5f60'])
def test_every_cache_entry_the_check_writes_lands_in_the_host_mounted_directory(
    make_check, dd_run_check, apiservers, workdir, check_id
):
    # The check's real run, through the real base class's key prefix, placed where the Agent would place it
    # (check ids as pkg/collector/check/id BuildID makes them: name[:instance name]:hash).
    ca = write(f'{workdir}/ca.crt', certs.valid_ca())
    apiservers(['/usr/local/bin/kube-apiserver', f'--client-ca-file={ca}'])
    datadog_agent.reset()
    check = make_check()
    check.check_id = check_id
    dd_run_check(check)
    keys = list(datadog_agent._cache)
    assert keys, 'the check wrote nothing to the persistent cache'
    helm_values = shipped_values()['agents']
    operator = operator_documents()['DatadogAgent']['spec']['override']['nodeAgent']
    for volumes, mounts in (
        (helm_values['volumes'], helm_values['volumeMounts']),
        (operator['volumes'], operator['containers']['agent']['volumeMounts']),
    ):
        directory = assert_state_kept_on_the_host(volumes, mounts)
        for key in keys:
            path = agent_file_for_key(render_deploy.AGENT_RUN_PATH, key)
            assert os.path.dirname(path) == directory, (key, path)


def test_the_state_mount_does_not_collide_with_the_charts_own():
    # Kubernetes refuses two mounts at one path and two volumes of one name; a mount below the chart's run directory
    # mount is applied after it (containerd's CRI plugin, withMounts, sorts mounts by path depth, orderedMounts, "so
    # that high level mounts don't shadow other mounts"; CRI-O and Docker do the same).
    helm_values = shipped_values()['agents']
    mount = assert_state_kept_on_the_host(helm_values['volumes'], helm_values['volumeMounts'])
    assert mount.startswith(render_deploy.AGENT_RUN_PATH + '/')
    assert mount not in chart_mount_paths() and render_deploy.AGENT_RUN_PATH in chart_mount_paths()
    assert render_deploy.STATE_VOLUME['name'] not in chart_volume_names() and 'datadogrun' in chart_volume_names()


# -- the Operator ------------------------------------------------------------------------------------------------


def operator_schema() -> dict:
    return json.loads((DATA / 'operator' / 'datadogagent_v2alpha1.schema.json').read_text())


def test_the_datadog_agent_resource_meets_the_operators_crd():
    # The CRD's openAPIV3Schema (config/crd/bases/v1/datadoghq.com_datadogagents_v2alpha1.json at the vendored
    # commit): every object has additionalProperties false, so an unknown field name fails here as the API server
    # would refuse it.
    resource = operator_documents()['DatadogAgent']
    jsonschema.validate(resource, operator_schema(), cls=jsonschema.Draft7Validator)
    wrong = copy.deepcopy(resource)
    wrong['spec']['override']['nodeAgent']['extraChecksd']['configmap'] = {}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(wrong, operator_schema())


def test_the_operator_mounts_the_check_from_a_configmap_named_in_the_resource():
    # MultiCustomConfig.ConfigMap (api/datadoghq/v2alpha1/datadogagent_types.go): the Operator mounts that ConfigMap
    # with the given items (object/volume/volumes.go GetVolumeFromMultiCustomConfig, first branch). configDataMap
    # would mount a .py key only through the fallback that lists keys parsing as YAML mappings.
    documents = operator_documents()
    configmap, node_agent = documents['ConfigMap'], documents['DatadogAgent']['spec']['override']['nodeAgent']
    assert set(documents) == {'ConfigMap', 'DatadogAgent'}
    assert configmap['apiVersion'] == 'v1' and 'namespace' not in configmap['metadata']
    assert 'namespace' not in documents['DatadogAgent']['metadata']  # both where kubectl applies them
    mounted = {}
    for field, directory in (('extraChecksd', 'checks.d'), ('extraConfd', 'conf.d')):
        assert set(node_agent[field]) == {'configMap'}
        reference = node_agent[field]['configMap']
        assert reference['name'] == configmap['metadata']['name']
        for item in reference['items']:
            mounted[f'{directory}/{item["path"]}'] = configmap['data'][item['key']]
    assert mounted['checks.d/cis_kubernetes.py'] == check_file()
    config = yaml.safe_load(mounted['conf.d/cis_kubernetes.yaml'])
    assert config['instances'][0]['tags'] == ['kube_cluster_name:<CLUSTER_NAME>']
    # a ConfigMap holds at most 1 MiB (Kubernetes' MaxSecretSize/ConfigMap validation)
    assert sum(len(k) + len(v.encode()) for k, v in configmap['data'].items()) < 1 << 20


def test_replacing_the_placeholder_names_the_cluster_once_and_leaves_the_check_alone():
    texts = [(ROOT / 'deploy' / 'operator' / name).read_text() for name in OPERATOR_FILES]
    assert render_deploy.CLUSTER_NAME_PLACEHOLDER not in check_file()
    named = {d['kind']: d for text in texts for d in yaml.safe_load_all(text.replace('<CLUSTER_NAME>', CLUSTER))}
    assert named['DatadogAgent']['spec']['global']['clusterName'] == CLUSTER
    config = yaml.safe_load(named['ConfigMap']['data']['cis_kubernetes.yaml'])
    assert config['instances'][0]['tags'] == [f'kube_cluster_name:{CLUSTER}']
    assert named['ConfigMap']['data']['cis_kubernetes.py'] == check_file()


def test_the_operator_state_mount_does_not_collide_with_its_run_directory():
    # The Operator mounts an emptyDir named datadogrun at /opt/datadog-agent/run (common/const.go RunPathVolumeName,
    # RunPathVolumeMount); the state mount is a different volume below it.
    node_agent = operator_documents()['DatadogAgent']['spec']['override']['nodeAgent']
    mount = assert_state_kept_on_the_host(node_agent['volumes'], node_agent['containers']['agent']['volumeMounts'])
    assert mount.startswith('/opt/datadog-agent/run/') and render_deploy.STATE_VOLUME['name'] != 'datadogrun'


# -- AppArmor -----------------------------------------------------------------------------------------------------


def readme_yaml_blocks() -> list[dict]:
    readme = (ROOT / 'README.md').read_text()
    section = readme[readme.index('## Troubleshooting') : readme.index('\n## ', readme.index('## Troubleshooting') + 5)]
    return [yaml.safe_load(block) for block in re.findall(r'```yaml\n(.*?)```', section, re.S)]


def test_the_readme_says_what_to_set_on_apparmor_hosts_and_the_settings_are_valid():
    blocks = readme_yaml_blocks()
    helm_blocks = [b for b in blocks if 'agents' in b]
    operator_blocks = [b for b in blocks if 'spec' in b]
    assert helm_blocks and operator_blocks
    schema = json.loads((CHART / 'values.schema.json').read_text())
    for block in helm_blocks:
        list(_set_paths(block, chart_defaults()))
        jsonschema.validate(install_values(extra=block), schema, cls=jsonschema.Draft7Validator)
    assert any(
        b['agents'].get('containers', {}).get('agent', {}).get('securityContext', {}).get('appArmorProfile')
        == {'type': 'Unconfined'}
        for b in helm_blocks
    )
    assert any(
        b['agents'].get('podAnnotations', {}).get('container.apparmor.security.beta.kubernetes.io/agent')
        == 'unconfined'
        for b in helm_blocks
    )
    for block in operator_blocks:
        resource = coalesce(operator_documents()['DatadogAgent'], block)
        jsonschema.validate(resource, operator_schema(), cls=jsonschema.Draft7Validator)
        assert resource['spec']['override']['nodeAgent']['containers']['agent']['appArmorProfileName'] == 'unconfined'


# -- joining the Agent the user runs ------------------------------------------------------------------------------


def overlay() -> dict:
    """`-f deploy/helm/values-existing-agent.yaml -f deploy/helm/checksd.yaml`, as Helm merges the two."""
    return coalesce(helm_file('values-existing-agent.yaml'), helm_file('checksd.yaml'))


def operator_patch() -> dict:
    return yaml.safe_load((ROOT / 'deploy' / 'operator' / 'datadog-agent-patch.yaml').read_text())


# What a release installed by someone else may hold (their site, key, cluster, other checks, log settings).
EXISTING_RELEASE = {
    'datadog': {
        'site': 'datadoghq.eu',
        'apiKeyExistingSecret': 'their-secret',
        'clusterName': CLUSTER,
        'logs': {'enabled': False, 'containerCollectAll': True},
        'confd': {'redisdb.yaml': 'init_config:\ninstances:\n  - host: redis\n    port: 6379\n'},
        'tags': ['team:platform'],
    },
    'agents': {'podLabels': {'team': 'platform'}},
}
CHECK_NEEDS = {
    'datadog.useHostPID',
    'datadog.logs.enabled',
    'datadog.confd',
    'datadog.checksd',
    'agents.tolerations',
    'agents.containers.agent.securityContext',
}


def upgrade_values(previous: dict, new: dict) -> dict:
    """`helm upgrade --reuse-values -f new`: the release's values with the new ones over them, then the chart's
    defaults under both (Helm's action/upgrade.go reuseValues, then chartutil.CoalesceValues)."""
    return coalesce(chart_defaults(), coalesce(previous, new))


def test_the_overlay_sets_only_what_the_check_needs():
    assert set(_set_paths(overlay(), chart_defaults())) == CHECK_NEEDS
    assert overlay()['datadog']['logs'] == {'enabled': True}  # the release's containerCollectAll stays its own
    assert overlay()['agents']['containers'] == {
        'agent': {'securityContext': {'capabilities': {'add': render_deploy.AGENT_CAPABILITIES}}}
    }
    assert 'site' not in overlay()['datadog'] and 'apiKeyExistingSecret' not in overlay()['datadog']


def test_an_upgrade_with_the_overlay_keeps_the_releases_own_values():
    values = upgrade_values(EXISTING_RELEASE, overlay())
    assert values['datadog']['site'] == 'datadoghq.eu' and values['datadog']['apiKeyExistingSecret'] == 'their-secret'
    assert values['datadog']['logs'] == {
        **chart_defaults()['datadog']['logs'],
        'enabled': True,
        'containerCollectAll': True,
    }
    assert set(values['datadog']['confd']) == {'redisdb.yaml', 'cis_kubernetes.yaml'}
    assert values['agents']['podLabels'] == {'team': 'platform'}
    assert values['agents']['containers']['agent']['securityContext']['readOnlyRootFilesystem'] is True  # the chart's
    schema = json.loads((CHART / 'values.schema.json').read_text())
    jsonschema.validate(values, schema, cls=jsonschema.Draft7Validator)


def test_helm_renders_the_overlays_check_byte_for_byte_in_an_existing_release(helm):
    values = upgrade_values(EXISTING_RELEASE, overlay())
    assert helm.tpl_to_yaml(overlay()['datadog']['checksd'], values) == {'cis_kubernetes.py': check_file()}
    confd = helm.tpl_to_yaml(overlay()['datadog']['confd'], values)
    assert yaml.safe_load(confd['cis_kubernetes.yaml'])['instances'][0]['tags'] == [f'kube_cluster_name:{CLUSTER}']


def test_the_overlay_keeps_the_checks_state_on_the_host_without_volumes_of_its_own():
    # The chart mounts /opt/datadog-agent/run from the host when log collection is on (the regular expressions of
    # test_the_chart_keeps_the_run_directory_only_with_log_collection, read in its templates): the overlay turns it
    # on, so it needs no volume, and sets none of the lists the release may hold (agents.volumes, volumeMounts).
    assert RUN_PATH_MOUNT.search(chart_template('_container-agent.yaml'))
    assert RUN_PATH_VOLUME.search(chart_template('_daemonset-volumes-linux.yaml'))
    assert upgrade_values(EXISTING_RELEASE, overlay())['datadog']['logs']['enabled'] is True
    assert 'volumes' not in overlay()['agents'] and 'volumeMounts' not in overlay()['agents']


def test_helm_replaces_lists_so_the_docs_say_which_to_merge():
    # The two lists of the overlay replace the release's own (Helm coalesces maps only): docs/deploy.md and the
    # overlay's header name both, and the merged lists the user writes give the check's and theirs.
    theirs = {'key': 'dedicated', 'operator': 'Equal', 'value': 'gpu', 'effect': 'NoSchedule'}
    previous = {**EXISTING_RELEASE, 'agents': {'tolerations': [theirs]}}
    assert upgrade_values(previous, overlay())['agents']['tolerations'] == render_deploy.CONTROL_PLANE_TOLERATIONS
    merged = copy.deepcopy(overlay())
    merged['agents']['tolerations'].append(theirs)
    assert theirs in upgrade_values(previous, merged)['agents']['tolerations']
    docs = (ROOT / 'docs' / 'deploy.md').read_text()
    header = (ROOT / 'deploy' / 'helm' / 'values-existing-agent.yaml').read_text().split('\ndatadog:', 1)[0]
    for path in ('agents.tolerations', 'agents.containers.agent.securityContext.capabilities.add'):
        assert path in docs and path in header


def test_the_operator_patch_sets_only_what_the_check_needs_and_keeps_the_rest():
    patch = operator_patch()
    assert set(patch) == {'spec'} and set(patch['spec']) == {'features', 'override'}
    assert patch['spec']['features'] == {'logCollection': {'enabled': True}}
    node_agent = patch['spec']['override']['nodeAgent']
    assert set(node_agent) == {'hostPID', 'tolerations', 'containers', 'extraConfd', 'extraChecksd'}
    theirs = {
        'apiVersion': 'datadoghq.com/v2alpha1',
        'kind': 'DatadogAgent',
        'metadata': {'name': 'datadog-agent'},
        'spec': {
            'global': {'site': 'datadoghq.eu', 'clusterName': CLUSTER, 'credentials': {'apiKey': 'x'}},
            'features': {'apm': {'enabled': True}, 'logCollection': {'containerCollectAll': True}},
            'override': {'nodeAgent': {'labels': {'team': 'platform'}}},
        },
    }
    patched = coalesce(theirs, patch)  # a JSON merge patch (RFC 7386) without nulls merges as Helm does
    jsonschema.validate(patched, operator_schema(), cls=jsonschema.Draft7Validator)
    assert patched['spec']['global'] == theirs['spec']['global']
    assert patched['spec']['features']['apm'] == {'enabled': True}
    assert patched['spec']['features']['logCollection'] == {'enabled': True, 'containerCollectAll': True}
    assert patched['spec']['override']['nodeAgent']['labels'] == {'team': 'platform'}
    configmap = operator_documents()['ConfigMap']
    for field in ('extraConfd', 'extraChecksd'):
        assert node_agent[field]['configMap']['name'] == configmap['metadata']['name']


# The annotation client-side `kubectl apply` writes (kubectl.kubernetes.io/last-applied-configuration: the object
# as JSON) counts against the 256 KiB that Kubernetes allows all of an object's annotations together
# (apimachinery's TotalAnnotationSizeLimitB = 256 * (1 << 10)).
ANNOTATIONS_LIMIT = 256 * (1 << 10)
OBJECT_LIMIT = 1 << 20  # a ConfigMap's data (MaxSecretSize / validation of ConfigMap), as server-side apply keeps it


def documented_commands() -> list[str]:
    """Every command line of the README, docs/ and deploy/'s headers that applies a file of deploy/."""
    texts = [(ROOT / 'README.md').read_text(), *(p.read_text() for p in (ROOT / 'docs').glob('*.md'))]
    texts += [p.read_text().split('\napiVersion:', 1)[0] for p in (ROOT / 'deploy').rglob('*.yaml')]
    joined = '\n'.join(texts).replace('\\\n', ' ').replace('#     |', '|')
    return [line for line in joined.splitlines() if 'kubectl apply' in line and 'deploy/' in line]


def test_every_object_is_applyable_by_the_documented_command():
    commands = documented_commands()
    assert commands
    for path in sorted((ROOT / 'deploy' / 'operator').glob('*.yaml')):
        for document in yaml.safe_load_all(path.read_text()):
            if 'kind' not in document:
                continue  # the merge patch: kubectl patch keeps no annotation
            size = len(json.dumps(document, separators=(',', ':')).encode())
            assert size < OBJECT_LIMIT, path.name
            applying = [c for c in commands if path.relative_to(ROOT).as_posix() in c]
            assert applying, f'no documented command applies {path.name}'
            if size >= ANNOTATIONS_LIMIT * 0.9:  # too close to the client-side limit for a check that grows
                assert all('--server-side' in c for c in applying), (path.name, size, applying)


def test_the_site_is_given_at_install():
    readme = (ROOT / 'README.md').read_text().replace('\\\n', ' ')  # continued lines joined
    assert re.search(
        r'helm install datadog-agent datadog/datadog -f deploy/helm/values.yaml -f deploy/helm/checksd.yaml[^\n]*'
        r'--set datadog.site=',
        readme,
    )
    text = (ROOT / 'deploy' / 'operator' / 'datadog-agent.yaml').read_text()
    named = yaml.safe_load(text.replace('<CLUSTER_NAME>', CLUSTER).replace('<DATADOG_SITE>', 'datadoghq.eu'))
    assert named['spec']['global']['site'] == 'datadoghq.eu'
    assert 's/<DATADOG_SITE>/' in readme
