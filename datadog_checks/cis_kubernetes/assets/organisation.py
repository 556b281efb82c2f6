"""The organisation's objects through the official client, datadog-api-client: list, get, create, update.

Request bodies are built with the client's own models (deserialized from the JSON, so a field the model does not
know is sent as it is, and the test server refuses it); responses are read back as JSON for the comparison.
"""

from __future__ import annotations

import json

from datadog_api_client import ApiClient, Configuration
from datadog_api_client.model_utils import data_to_dict
from datadog_api_client.rest import ClientRetry
from datadog_api_client.v1.api.dashboards_api import DashboardsApi
from datadog_api_client.v1.api.logs_pipelines_api import LogsPipelinesApi
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.logs_pipeline import LogsPipeline
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_update_request import MonitorUpdateRequest
from datadog_api_client.v2.api.security_monitoring_api import SecurityMonitoringApi
from datadog_api_client.v2.model.security_filter_create_request import SecurityFilterCreateRequest
from datadog_api_client.v2.model.security_filter_update_request import SecurityFilterUpdateRequest
from datadog_api_client.v2.model.security_monitoring_rule_update_payload import SecurityMonitoringRuleUpdatePayload
from datadog_api_client.v2.model.security_monitoring_standard_rule_create_payload import (
    SecurityMonitoringStandardRuleCreatePayload,
)

from .desired import DASHBOARD, FILTER, MONITOR, PIPELINE, RULE, owned
from .plan import Existing

PAGE = 100  # the largest page the security rules endpoint serves


class Retry(ClientRetry):
    """The client's retry (429 waits X-RateLimit-Reset), except that a POST is not retried after a 5xx: the object
    may have been created, and a second POST would make a second one."""

    def is_retry(self, method, status_code, has_retry_after=False):
        if method == 'POST' and status_code != 429:
            return False
        return super().is_retry(method, status_code, has_retry_after)


def configuration(
    api_key: str, app_key: str, site: str, api_url: str | None, retries: int = 3, backoff: float = 2.0
) -> Configuration:
    # allowed_methods: what urllib3 may resend after a read error (the request may have been carried out)
    policy = Retry(
        total=retries, backoff_factor=backoff, raise_on_status=False, allowed_methods={'GET', 'PUT', 'PATCH'}
    )
    config = Configuration(retry_policy=policy)
    config.api_key['apiKeyAuth'] = api_key
    config.api_key['appKeyAuth'] = app_key
    config.server_variables['site'] = site
    if api_url:
        config.host = api_url.rstrip('/')  # every endpoint, v1 and v2, at this address
    return config


class Organisation:
    """One kind of object at a time: `existing(kind)`, `full(kind, existing)`, `create`, `update`."""

    def __init__(self, config: Configuration):
        self.client = ApiClient(config)
        self.dashboards = DashboardsApi(self.client)
        self.monitors = MonitorsApi(self.client)
        self.pipelines = LogsPipelinesApi(self.client)
        self.security = SecurityMonitoringApi(self.client)

    def close(self) -> None:
        self.client.close()

    def model(self, body: dict, model: type):
        return self.client.deserialize(json.dumps(body), (model,), True)

    # -- reading -----------------------------------------------------------------------------------------------

    def existing(self, kind: str) -> list[Existing]:
        listed = {
            DASHBOARD: self._dashboards,
            MONITOR: self._monitors,
            PIPELINE: self._pipelines,
            RULE: self._rules,
            FILTER: self._filters,
        }[kind]()
        name_key = {DASHBOARD: 'title', FILTER: None}.get(kind, 'name')
        out = []
        for item in listed:
            name = item['attributes']['name'] if name_key is None else item.get(name_key)
            out.append(Existing(str(item['id']), name, owned(kind, item), item))
        return out

    def _dashboards(self) -> list[dict]:
        items, start = [], 0
        while True:
            page = data_to_dict(self.dashboards.list_dashboards(count=PAGE, start=start)).get('dashboards') or []
            items += page
            if len(page) < PAGE:
                return items
            start += PAGE

    def _monitors(self) -> list[dict]:
        items, number = [], 0
        while True:
            page = [data_to_dict(m) for m in self.monitors.list_monitors(page=number, page_size=PAGE)]
            items += page
            if len(page) < PAGE:
                return items
            number += 1

    def _pipelines(self) -> list[dict]:
        return [data_to_dict(p) for p in self.pipelines.list_logs_pipelines().value]  # a ModelSimple list

    def _rules(self) -> list[dict]:
        items, number = [], 0
        while True:
            response = self.security.list_security_monitoring_rules(page_size=PAGE, page_number=number)
            page = data_to_dict(response).get('data') or []
            items += page
            if len(page) < PAGE:
                return items
            number += 1

    def _filters(self) -> list[dict]:
        return data_to_dict(self.security.list_security_filters()).get('data') or []

    def full(self, kind: str, existing: Existing) -> dict:
        """The object as its create request spells it, for the comparison."""
        if kind == DASHBOARD:  # the list gives summaries
            return data_to_dict(self.dashboards.get_dashboard(existing.id))
        if kind == FILTER:
            return {'data': {'type': existing.listed.get('type'), 'attributes': existing.listed['attributes']}}
        return existing.listed

    # -- writing -----------------------------------------------------------------------------------------------

    def create(self, kind: str, body: dict) -> str:
        if kind == DASHBOARD:
            return self.dashboards.create_dashboard(body=self.model(body, Dashboard)).id
        if kind == MONITOR:
            return str(self.monitors.create_monitor(body=self.model(body, Monitor)).id)
        if kind == PIPELINE:
            return self.pipelines.create_logs_pipeline(body=self.model(body, LogsPipeline)).id
        if kind == RULE:
            payload = self.model(body, SecurityMonitoringStandardRuleCreatePayload)
            return data_to_dict(self.security.create_security_monitoring_rule(body=payload))['id']
        payload = self.model(body, SecurityFilterCreateRequest)
        return self.security.create_security_filter(body=payload).data.id

    def update(self, kind: str, object_id: str, body: dict) -> None:
        if kind == DASHBOARD:
            self.dashboards.update_dashboard(object_id, body=self.model(body, Dashboard))
        elif kind == MONITOR:
            self.monitors.update_monitor(int(object_id), body=self.model(body, MonitorUpdateRequest))
        elif kind == PIPELINE:
            self.pipelines.update_logs_pipeline(object_id, body=self.model(body, LogsPipeline))
        elif kind == RULE:
            fields = {key: value for key, value in body.items() if key != 'type'}  # a rule keeps its type
            payload = self.model(fields, SecurityMonitoringRuleUpdatePayload)
            self.security.update_security_monitoring_rule(object_id, body=payload)
        else:
            self.security.update_security_filter(object_id, body=self.model(body, SecurityFilterUpdateRequest))
