"""Copy, from git clones of the Datadog Helm chart and the Datadog Operator, what tests/test_deploy.py checks deploy/
against: tests cannot fetch, so the chart's own files and the Operator's CRD schema are kept under tests/data/deploy/
with the commit they come from.

python -m devtools.vendor_deploy_refs HELM_CHARTS_GIT_DIR DATADOG_OPERATOR_GIT_DIR

Copied as they are: the chart's values.yaml, values.schema.json and the templates that embed datadog.checksd and
datadog.confd, mount the Agent's run directory and validate datadog.clusterName. From the Operator's CRD, the schema of
the DatadogAgent v2alpha1 resource with every property name kept (and its `additionalProperties: false`), but the
sub-schemas of properties deploy/ does not set replaced by `{}`: small enough to commit, still strict about names.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from devtools import render_deploy

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / 'tests' / 'data' / 'deploy'
CHART_FILES = [
    'charts/datadog/Chart.yaml',
    'charts/datadog/values.yaml',
    'charts/datadog/values.schema.json',
    'charts/datadog/templates/checksd-configmap.yaml',
    'charts/datadog/templates/confd-configmap.yaml',
    'charts/datadog/templates/_container-agent.yaml',
    'charts/datadog/templates/_daemonset-volumes-linux.yaml',
    'charts/datadog/templates/_helpers.tpl',
]
CRD = 'config/crd/bases/v1/datadoghq.com_datadogagents_v2alpha1.json'


def _git(repo: str, *args: str) -> str:
    return subprocess.run(['git', '--git-dir', repo, *args], check=True, capture_output=True, text=True).stdout


def _prune(schema, used):
    """The schema with the sub-schemas of properties `used` does not contain replaced by {}."""
    if not isinstance(schema, dict):
        return schema
    pruned = dict(schema)
    if 'properties' in schema:
        pruned['properties'] = {
            name: (_prune(sub, used[name]) if isinstance(used, dict) and name in used else {})
            for name, sub in schema['properties'].items()
        }
    if isinstance(schema.get('additionalProperties'), dict):
        values = list(used.values()) if isinstance(used, dict) else []
        merged = _merge(values)
        pruned['additionalProperties'] = _prune(schema['additionalProperties'], merged) if values else {}
    if 'items' in schema:
        pruned['items'] = _prune(schema['items'], _merge(used if isinstance(used, list) else []))
    return pruned


def _merge(documents: list):
    merged: dict = {}
    for document in documents:
        if not isinstance(document, dict):
            return document
        for key, value in document.items():
            merged[key] = _merge([merged[key], value]) if key in merged else value
    return merged


def main(argv: list[str]) -> int:
    charts, operator = argv
    chart_commit = _git(charts, 'rev-parse', 'HEAD').strip()
    operator_commit = _git(operator, 'rev-parse', 'HEAD').strip()
    (OUT / 'helm').mkdir(parents=True, exist_ok=True)
    (OUT / 'operator').mkdir(parents=True, exist_ok=True)
    for path in CHART_FILES:
        (OUT / 'helm' / Path(path).name).write_text(_git(charts, 'show', f'{chart_commit}:{path}'))
    crd = json.loads(_git(operator, 'show', f'{operator_commit}:{CRD}'))
    used = [d for d in yaml.safe_load_all(render_deploy.operator_resource('')) if d['kind'] == 'DatadogAgent'][0]
    fragment = _prune(crd, used)
    (OUT / 'operator' / 'datadogagent_v2alpha1.schema.json').write_text(json.dumps(fragment, indent=1) + '\n')
    (OUT / 'SOURCES.json').write_text(
        json.dumps(
            {
                'helm': {'repository': 'DataDog/helm-charts', 'commit': chart_commit, 'files': CHART_FILES},
                'operator': {'repository': 'DataDog/datadog-operator', 'commit': operator_commit, 'files': [CRD]},
            },
            indent=2,
        )
        + '\n'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
