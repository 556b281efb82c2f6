"""What the organisation should hold: the shipped asset files as the API's request bodies, marked as ours."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

# Copies of the repository's assets/ made by `./dev.sh build` (devtools/package_assets.py), so the wheel has them.
FILES = Path(__file__).resolve().parent / 'files'
DASHBOARD_FILES = ('dashboards/overview.json',)
MONITOR_FILES = (
    'monitors/control_failing.json',
    'monitors/client_ca_expiring.json',
    'monitors/check_not_reporting.json',
)
PIPELINE_FILE = 'logs/cis_kubernetes.yaml'
RULE_FILES = ('security/control_failing.json', 'security/client_ca_expiring.json')

# How an object says this command made it, so that it never touches another team's: a tag where the object has
# tags, a line of its description where it has none.
MANAGED_TAG = 'managed_by:cis_kubernetes_assets'
MANAGED_NOTE = (
    'Managed by `python -m datadog_checks.cis_kubernetes.assets apply`: changes made here are replaced at its next run.'
)
FILTER_QUERY = 'source:cis_kubernetes'
# A security filter has a name and a query only: its name is its mark.
FILTER_NAME = 'CIS Kubernetes findings (cis_kubernetes assets)'
# A recipient as monitors mention one: @user@example.com, @slack-channel, @pagerduty-service, @webhook-name.
RECIPIENT = re.compile(r'@[^\s@][^\s]*')

DASHBOARD, MONITOR, PIPELINE, RULE, FILTER = 'dashboard', 'monitor', 'logs pipeline', 'security rule', 'security filter'
KINDS = (DASHBOARD, MONITOR, PIPELINE, RULE, FILTER)  # the order of apply: what pages and signals come last


@dataclass(frozen=True)
class Desired:
    kind: str
    name: str
    body: dict  # the create request's JSON


def _read(relative: str):
    text = (FILES / relative).read_text(encoding='utf-8')
    return yaml.safe_load(text) if relative.endswith('.yaml') else json.loads(text)


def check_recipients(notify: Sequence[str]) -> list[str]:
    """The --notify handles, each refused unless it is one @handle."""
    bad = [handle for handle in notify if not RECIPIENT.fullmatch(handle)]
    if bad:
        raise ValueError(f'--notify takes one @handle each (@user@example.com, @slack-channel): not {bad[0]!r}')
    return list(dict.fromkeys(notify))


def dashboard(document: dict) -> Desired:
    body = copy.deepcopy(document)
    body['description'] = f'{body.get("description") or ""}\n\n{MANAGED_NOTE}'.lstrip()
    return Desired(DASHBOARD, body['title'], body)


def monitor(document: dict, notify: Sequence[str]) -> Desired:
    """The monitor of a publishing-format file (its `definition`), its message ending with the recipients."""
    body = copy.deepcopy(document['definition'])
    body['tags'] = [*body.get('tags', []), MANAGED_TAG]
    if notify:
        body['message'] = f'{body["message"]}\n\n{" ".join(notify)}'
    return Desired(MONITOR, body['name'], body)


def api_pipeline(document: dict) -> dict:
    """The publishing format's pipeline (integrations-core assets/logs/<name>.yaml) as the Logs Pipelines API takes
    it: `enabled` is `is_enabled` there, and facets are not part of a pipeline."""

    def convert(value):
        if isinstance(value, dict):
            return {('is_enabled' if key == 'enabled' else key): convert(item) for key, item in value.items()}
        if isinstance(value, list):
            return [convert(item) for item in value]
        return value

    body = convert(document['pipeline'])
    body['description'] = MANAGED_NOTE
    return body


def pipeline(document: dict) -> Desired:
    body = api_pipeline(document)
    return Desired(PIPELINE, body['name'], body)


def rule(document: dict) -> Desired:
    body = copy.deepcopy(document)
    body['tags'] = [*body.get('tags', []), MANAGED_TAG]
    return Desired(RULE, body['name'], body)


def security_filter() -> Desired:
    """Cloud SIEM analyses only the logs its security filters select; an organisation on Cloud SIEM with Flex Logs
    starts with none, so the check's finding logs get their own filter."""
    attributes = {
        'name': FILTER_NAME,
        'query': FILTER_QUERY,
        'exclusion_filters': [],
        'filtered_data_type': 'logs',
        'is_enabled': True,
    }
    return Desired(FILTER, FILTER_NAME, {'data': {'type': 'security_filters', 'attributes': attributes}})


def desired_objects(notify: Sequence[str] = ()) -> list[Desired]:
    recipients = check_recipients(notify)
    return [
        *(dashboard(_read(name)) for name in DASHBOARD_FILES),
        *(monitor(_read(name), recipients) for name in MONITOR_FILES),
        pipeline(_read(PIPELINE_FILE)),
        *(rule(_read(name)) for name in RULE_FILES),
        security_filter(),
    ]


def owned(kind: str, current: dict) -> bool:
    """Whether an object the organisation holds (as the API lists it) was made by this command."""
    if kind in (MONITOR, RULE):
        return MANAGED_TAG in (current.get('tags') or [])
    if kind in (DASHBOARD, PIPELINE):
        return MANAGED_NOTE in (current.get('description') or '')
    attributes = current.get('attributes') or {}
    return attributes.get('name') == FILTER_NAME and not attributes.get('is_builtin')
