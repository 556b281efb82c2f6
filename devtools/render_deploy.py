"""Write deploy/ from the single-file check, checks.d/cis_kubernetes.py, so what users apply embeds it byte for byte.

python -m devtools.render_deploy          # rewrite deploy/
python -m devtools.render_deploy --check  # exit 1 when deploy/ differs from what the check file gives
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHECK_FILE = ROOT / 'checks.d' / 'cis_kubernetes.py'  # built by devtools.amalgamate
HELM_VALUES = ROOT / 'deploy' / 'helm' / 'values.yaml'
HELM_OVERLAY = ROOT / 'deploy' / 'helm' / 'values-existing-agent.yaml'  # for `helm upgrade --reuse-values`
HELM_CHECKSD = ROOT / 'deploy' / 'helm' / 'checksd.yaml'  # the check itself, given with either of the two above
OPERATOR_CONFIGMAP_FILE = ROOT / 'deploy' / 'operator' / 'cis-kubernetes-configmap.yaml'
OPERATOR_RESOURCE = ROOT / 'deploy' / 'operator' / 'datadog-agent.yaml'
OPERATOR_PATCH = ROOT / 'deploy' / 'operator' / 'datadog-agent-patch.yaml'  # for an existing DatadogAgent

# The Agent runs on every node, control-plane nodes included; nodes without an apiserver send no verdict.
CONTROL_PLANE_TOLERATIONS = [
    {'key': 'node-role.kubernetes.io/control-plane', 'operator': 'Exists', 'effect': 'NoSchedule'},
    {'key': 'node-role.kubernetes.io/master', 'operator': 'Exists', 'effect': 'NoSchedule'},
    {'key': 'node-role.kubernetes.io/etcd', 'operator': 'Exists', 'effect': 'NoExecute'},
]
# To open /proc/<pid>/root of the apiserver (another container) and files only root may read.
AGENT_CAPABILITIES = ['SYS_PTRACE', 'DAC_READ_SEARCH']

# The Agent's run_path, where the check's persistent cache (the status it announced) is kept. The Datadog chart
# (DataDog/helm-charts@79f7c74f, charts/datadog/templates/_container-agent.yaml and _daemonset-volumes-linux.yaml)
# mounts it from the host only when log collection is enabled, an emptyDir otherwise; the Operator
# (DataDog/datadog-operator@55db5316, internal/controller/datadogagent/common/volumes.go GetVolumeForRunPath) mounts
# an emptyDir unless its log collection feature is on. An emptyDir is lost with the container: every restart would
# announce every node's status again.
AGENT_RUN_PATH = '/opt/datadog-agent/run'
# The Agent stores `write_persistent_cache(key)` of a check at run_path/<check_id up to its first ':'>/<rest>
# (DataDog/datadog-agent@17327f73 pkg/persistentcache/persistentcache.go getFileForKey; the check id is
# "<check name>:[<instance name>:]<hash>", pkg/collector/check/id BuildID): the check's own directory. Only that
# directory is kept on the host, so nothing else the Agent does changes (no log collection switched on).
CACHE_DIRECTORY = 'cis_kubernetes'
STATE_VOLUME = {
    'name': 'cis-kubernetes-state',
    'hostPath': {'path': f'/var/lib/datadog-agent/{CACHE_DIRECTORY}', 'type': 'DirectoryOrCreate'},
}
STATE_VOLUME_MOUNT = {'name': 'cis-kubernetes-state', 'mountPath': f'{AGENT_RUN_PATH}/{CACHE_DIRECTORY}'}

# The chart passes datadog.confd and datadog.checksd through Helm's `tpl` (charts/datadog/templates/
# confd-configmap.yaml, checksd-configmap.yaml): the cluster name given once with --set datadog.clusterName is the
# check's tag too, and Helm refuses to install without it (`required`, Helm's pkg/engine/engine.go).
# Backquotes, not double quotes: toYaml writes a string with a trailing space double-quoted, escaping `"`.
HELM_CLUSTER_NAME = '{{ required `set datadog.clusterName` .Values.datadog.clusterName }}'
CLUSTER_NAME_PLACEHOLDER = '<CLUSTER_NAME>'
SITE_PLACEHOLDER = '<DATADOG_SITE>'  # datadoghq.com, datadoghq.eu, us3.datadoghq.com, ...: the organisation's site
# Helm deletes every "<no value>" from what a template renders (pkg/engine/engine.go renderWithReferences): no
# escaping survives that, so a check file holding it cannot be shipped through the chart.
HELM_NO_VALUE = '<no value>'

# The Operator mounts extraChecksd/extraConfd given as configDataMap only through a fallback: it lists, as the
# volume's items, the keys whose text parses as a YAML mapping (object/volume/volumes.go
# GetVolumeFromMultiCustomConfig); a Python file is mounted only because an empty list means "every key". A
# ConfigMap referenced by name, with its items, is the mechanism the CRD documents (MultiCustomConfig.ConfigMap,
# api/datadoghq/v2alpha1/datadogagent_types.go).
OPERATOR_CONFIGMAP = 'datadog-cis-kubernetes'
CHECK_KEY = 'cis_kubernetes.py'
CONFIG_KEY = 'cis_kubernetes.yaml'


def check_config(cluster_name: str) -> str:
    return (
        'init_config:\n'
        '\n'
        'instances:\n'
        '  - tags:\n'
        f'      - kube_cluster_name:{cluster_name}\n'
        '    # days_warning: 30\n'
        '    # event_resend_interval: 86400\n'
        '\n'
        "# Findings as logs, for the Cloud SIEM rules in assets/security/ (needs the Agent's log collection on).\n"
        'logs:\n'
        '  - type: integration\n'
        '    source: cis_kubernetes\n'
        '    service: cis_kubernetes\n'
    )


CHECK_CONFIG = check_config(CLUSTER_NAME_PLACEHOLDER)


def helm_literal(text: str) -> str:
    """`text` as a Helm template whose output is `text`: `{{` is the only sequence text/template reads as an action
    (`}}` alone is text), so each one becomes an action printing it. A raw string (backquotes) needs no escaping in
    any YAML style the chart's toYaml may choose."""
    if HELM_NO_VALUE in text:
        raise ValueError(f'{HELM_NO_VALUE!r} in the check file: Helm deletes it from every rendered template')
    return text.replace('{{', '{{`{{`}}')


class _Dumper(yaml.SafeDumper):
    pass


def _literal_strings(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '|' if '\n' in value else None
    return dumper.represent_scalar('tag:yaml.org,2002:str', value, style=style)


_Dumper.add_representer(str, _literal_strings)


def _dump(header: str, document: dict) -> str:
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def helm_checksd(check_source: str) -> str:
    """datadog.checksd alone: the check file, given after values.yaml or values-existing-agent.yaml."""
    header = (
        '# The cis_kubernetes check for the official Datadog Helm chart, given after values.yaml (a new install) or\n'
        '# values-existing-agent.yaml (an Agent already installed with the chart). Generated by\n'
        '# `python -m devtools.render_deploy` from checks.d/cis_kubernetes.py: the chart renders datadog.checksd\n'
        '# through `tpl`, so every "{{" of the check is written here as {{`{{`}}.\n'
    )
    return _dump(header, {'datadog': {'checksd': {CHECK_KEY: helm_literal(check_source)}}})


def helm_values() -> str:
    values = {
        'datadog': {
            'apiKeyExistingSecret': 'datadog-secret',
            'useHostPID': True,
            # The check's findings go out as logs (its `logs:` entry); collecting containers' logs stays off.
            'logs': {'enabled': True, 'containerCollectAll': False},
            'confd': {CONFIG_KEY: check_config(HELM_CLUSTER_NAME)},
        },
        'agents': {
            'tolerations': CONTROL_PLANE_TOLERATIONS,
            'containers': {'agent': {'securityContext': {'capabilities': {'add': AGENT_CAPABILITIES}}}},
            'volumes': [STATE_VOLUME],
            'volumeMounts': [STATE_VOLUME_MOUNT],
        },
    }
    header = (
        '# Values for the official Datadog Helm chart: the cis_kubernetes check on every node, control-plane nodes\n'
        '# included, the check itself from checksd.yaml. Generated by `python -m devtools.render_deploy`.\n'
        '#   kubectl create secret generic datadog-secret --from-literal api-key=<DATADOG_API_KEY>\n'
        '#   helm install datadog-agent datadog/datadog -f deploy/helm/values.yaml -f deploy/helm/checksd.yaml \\\n'
        '#     --set datadog.clusterName=<NAME> --set datadog.site=<DATADOG_SITE>\n'
        '# The cluster name is given once: the chart checks it and the check tags with it (kube_cluster_name).\n'
        "# The site is the organisation's (datadoghq.eu for an EU one): without it, data goes to datadoghq.com.\n"
        '# An Agent already installed with the chart: values-existing-agent.yaml (docs/deploy.md).\n'
        '# AppArmor hosts: see README.md, Troubleshooting.\n'
    )
    return _dump(header, values)


def helm_overlay() -> str:
    """What the check needs from an Agent installed with the chart, and nothing else: maps merge into the release's
    values; the two lists (tolerations, capabilities) replace the release's own, which docs/deploy.md says to add.
    Log collection on makes the chart keep /opt/datadog-agent/run on the host, the check's state with it."""
    values = {
        'datadog': {
            'useHostPID': True,
            'logs': {'enabled': True},
            'confd': {CONFIG_KEY: check_config(HELM_CLUSTER_NAME)},
        },
        'agents': {
            'tolerations': CONTROL_PLANE_TOLERATIONS,
            'containers': {'agent': {'securityContext': {'capabilities': {'add': AGENT_CAPABILITIES}}}},
        },
    }
    header = (
        '# Adds the cis_kubernetes check to an Agent installed with the official Datadog Helm chart, keeping the\n'
        "# release's own values (docs/deploy.md), the check itself from checksd.yaml. Generated by\n"
        '# `python -m devtools.render_deploy`.\n'
        '#   helm upgrade <RELEASE> datadog/datadog --reuse-values -f deploy/helm/values-existing-agent.yaml \\\n'
        '#     -f deploy/helm/checksd.yaml\n'
        '# Helm merges maps but replaces lists: if `helm get values <RELEASE>` shows agents.tolerations or\n'
        '# agents.containers.agent.securityContext.capabilities.add, add those entries to the two lists below first.\n'
    )
    return _dump(header, values)


def operator_configmap(check_source: str) -> str:
    configmap = {
        'apiVersion': 'v1',
        'kind': 'ConfigMap',
        'metadata': {'name': OPERATOR_CONFIGMAP},
        'data': {CHECK_KEY: check_source, CONFIG_KEY: CHECK_CONFIG},
    }
    header = (
        '# The cis_kubernetes check and its configuration, for the Datadog Operator (extraChecksd and extraConfd of\n'
        '# the DatadogAgent reference it by name). Generated by `python -m devtools.render_deploy`.\n'
        '# Server-side apply: the object is too large for the annotation client-side apply keeps (256 KiB).\n'
        "#   sed 's/<CLUSTER_NAME>/<NAME>/g' deploy/operator/cis-kubernetes-configmap.yaml \\\n"
        '#     | kubectl apply --server-side -f -\n'
    )
    return _dump(header, configmap)


def _node_agent_for_the_check() -> dict:
    return {
        'hostPID': True,
        'tolerations': CONTROL_PLANE_TOLERATIONS,
        'containers': {'agent': {'securityContext': {'capabilities': {'add': AGENT_CAPABILITIES}}}},
        'extraConfd': {'configMap': {'name': OPERATOR_CONFIGMAP, 'items': [{'key': CONFIG_KEY, 'path': CONFIG_KEY}]}},
        'extraChecksd': {'configMap': {'name': OPERATOR_CONFIGMAP, 'items': [{'key': CHECK_KEY, 'path': CHECK_KEY}]}},
    }


def operator_resource() -> str:
    node_agent = _node_agent_for_the_check()
    node_agent['containers']['agent']['volumeMounts'] = [STATE_VOLUME_MOUNT]
    node_agent['volumes'] = [STATE_VOLUME]
    resource = {
        'apiVersion': 'datadoghq.com/v2alpha1',
        'kind': 'DatadogAgent',
        'metadata': {'name': 'datadog'},
        'spec': {
            'global': {
                'clusterName': CLUSTER_NAME_PLACEHOLDER,
                'site': SITE_PLACEHOLDER,
                'credentials': {'apiSecret': {'secretName': 'datadog-secret', 'keyName': 'api-key'}},
            },
            # The check's findings go out as logs (its `logs:` entry); collecting containers' logs stays off.
            'features': {'logCollection': {'enabled': True, 'containerCollectAll': False}},
            'override': {'nodeAgent': node_agent},
        },
    }
    header = (
        '# For the Datadog Operator, a cluster without a DatadogAgent yet: one running the cis_kubernetes check on\n'
        '# every node, control-plane nodes included, from the ConfigMap of cis-kubernetes-configmap.yaml (apply it\n'
        '# first). An existing DatadogAgent: datadog-agent-patch.yaml (docs/deploy.md). Generated by\n'
        '# `python -m devtools.render_deploy`.\n'
        '#   kubectl create secret generic datadog-secret --from-literal api-key=<DATADOG_API_KEY>\n'
        "#   sed -e 's/<CLUSTER_NAME>/<NAME>/g' -e 's/<DATADOG_SITE>/<SITE>/' deploy/operator/datadog-agent.yaml \\\n"
        '#     | kubectl apply -f -\n'
        '# AppArmor hosts: see README.md, Troubleshooting.\n'
    )
    return _dump(header, resource)


def operator_patch() -> str:
    """A merge patch of an existing DatadogAgent: only what the check needs. With log collection on, the Operator
    keeps /opt/datadog-agent/run on the host, the check's state with it."""
    patch = {
        'spec': {
            'features': {'logCollection': {'enabled': True}},
            'override': {'nodeAgent': _node_agent_for_the_check()},
        }
    }
    header = (
        '# Adds the cis_kubernetes check to an existing DatadogAgent (after cis-kubernetes-configmap.yaml):\n'
        '#   kubectl patch datadogagent <NAME> --type merge --patch-file deploy/operator/datadog-agent-patch.yaml\n'
        '# A merge patch replaces lists and the extraConfd/extraChecksd references: if your DatadogAgent sets\n'
        '# override.nodeAgent tolerations, containers.agent.securityContext.capabilities.add, extraConfd or\n'
        '# extraChecksd, merge them by hand (docs/deploy.md). Generated by `python -m devtools.render_deploy`.\n'
    )
    return _dump(header, patch)


def rendered() -> dict[Path, str]:
    source = CHECK_FILE.read_text()
    return {
        HELM_VALUES: helm_values(),
        HELM_OVERLAY: helm_overlay(),
        HELM_CHECKSD: helm_checksd(source),
        OPERATOR_CONFIGMAP_FILE: operator_configmap(source),
        OPERATOR_RESOURCE: operator_resource(),
        OPERATOR_PATCH: operator_patch(),
    }


def main(argv: list[str]) -> int:
    stale = {path: text for path, text in rendered().items() if not path.exists() or path.read_text() != text}
    if '--check' in argv:
        for path in stale:
            print(f'{path.relative_to(ROOT)} is stale: run python -m devtools.render_deploy')
        return 1 if stale else 0
    for path, text in stale.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
