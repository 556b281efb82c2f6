"""A stand-in for Datadog's API on loopback: the endpoints the Datadog-side command uses, an organisation that
already holds other teams' objects, and every request body checked with datadog-api-client's own models, strictly
(tests/test_assets.py strict_model: unknown keys and unparsed enum values refused, as well as what the models refuse).

Bounded: it listens on 127.0.0.1 only, reads at most MAX_BODY bytes, times out idle connections, and stops with
its fixture.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.logs_pipeline import LogsPipeline
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_update_request import MonitorUpdateRequest
from datadog_api_client.v2.model.security_filter_create_request import SecurityFilterCreateRequest
from datadog_api_client.v2.model.security_filter_update_request import SecurityFilterUpdateRequest
from datadog_api_client.v2.model.security_monitoring_rule_update_payload import SecurityMonitoringRuleUpdatePayload
from datadog_api_client.v2.model.security_monitoring_standard_rule_create_payload import (
    SecurityMonitoringStandardRuleCreatePayload,
)

from tests.test_assets import strict_model

API_KEY, APP_KEY = 'test-api-key', 'test-app-key'
MAX_BODY = 4 << 20
NOW = '2026-12-04T12:00:00.000000+00:00'

# (method, path pattern) -> (collection, the model the body must be, what the request does)
ROUTES = [
    ('GET', r'/api/v1/dashboard', 'dashboards', None, 'list'),
    ('GET', r'/api/v1/dashboard/(?P<id>[^/]+)', 'dashboards', None, 'get'),
    ('POST', r'/api/v1/dashboard', 'dashboards', Dashboard, 'create'),
    ('PUT', r'/api/v1/dashboard/(?P<id>[^/]+)', 'dashboards', Dashboard, 'replace'),
    ('GET', r'/api/v1/monitor', 'monitors', None, 'list'),
    ('POST', r'/api/v1/monitor', 'monitors', Monitor, 'create'),
    ('PUT', r'/api/v1/monitor/(?P<id>\d+)', 'monitors', MonitorUpdateRequest, 'merge'),
    ('GET', r'/api/v1/logs/config/pipelines', 'pipelines', None, 'list'),
    ('POST', r'/api/v1/logs/config/pipelines', 'pipelines', LogsPipeline, 'create'),
    ('PUT', r'/api/v1/logs/config/pipelines/(?P<id>[^/]+)', 'pipelines', LogsPipeline, 'replace'),
    ('GET', r'/api/v2/security_monitoring/rules', 'rules', None, 'list'),
    ('POST', r'/api/v2/security_monitoring/rules', 'rules', SecurityMonitoringStandardRuleCreatePayload, 'create'),
    ('PUT', r'/api/v2/security_monitoring/rules/(?P<id>[^/]+)', 'rules', SecurityMonitoringRuleUpdatePayload, 'merge'),
    ('GET', r'/api/v2/security_monitoring/configuration/security_filters', 'filters', None, 'list'),
    ('POST', r'/api/v2/security_monitoring/configuration/security_filters', 'filters', SecurityFilterCreateRequest,
     'create'),
    ('PATCH', r'/api/v2/security_monitoring/configuration/security_filters/(?P<id>[^/]+)', 'filters',
     SecurityFilterUpdateRequest, 'merge'),
]  # fmt: skip


@dataclass
class Fault:
    """The next `times` requests matching method and path get `status` (with `headers`) instead of an answer."""

    method: str
    path: str  # a regular expression over the path
    status: int
    times: int = 1
    headers: dict = field(default_factory=dict)


def other_teams() -> dict[str, dict[str, dict]]:
    """An organisation in use: other teams' dashboard, monitors, pipeline and rule, and the built-in filter."""
    return {
        'dashboards': {
            'abc-123-def': {
                'id': 'abc-123-def',
                'title': 'Payments overview',
                'description': 'Owned by the payments team.',
                'layout_type': 'ordered',
                'widgets': [{'id': 1, 'definition': {'type': 'note', 'content': 'payments'}}],
                'author_handle': 'payments@example.com',
            }
        },
        'monitors': {
            '1001': {
                'id': 1001,
                'name': '[Payments] checkout latency high',
                'type': 'query alert',
                'query': 'avg(last_5m):avg:checkout.latency{*} > 2',
                'message': 'Latency is high @pagerduty-payments',
                'tags': ['team:payments'],
                'options': {'thresholds': {'critical': 2.0}},
                'overall_state': 'OK',
            },
            '1002': {
                'id': 1002,
                'name': 'Kubernetes: kubelet down',
                'type': 'service check',
                'query': '"kubernetes.kubelet.check".over("*").by("host").last(2).count_by_status()',
                'message': 'kubelet down @slack-platform',
                'tags': ['integration:kubernetes', 'team:platform'],
                'options': {'thresholds': {'critical': 1}},
                'overall_state': 'OK',
            },
        },
        'pipelines': {
            'pl-nginx': {
                'id': 'pl-nginx',
                'type': 'pipeline',
                'name': 'Nginx',
                'is_enabled': True,
                'is_read_only': True,
                'filter': {'query': 'source:nginx'},
                'processors': [],
            }
        },
        'rules': {
            'rule-brute-force': {
                'id': 'rule-brute-force',
                'name': 'Brute force on SSH',
                'type': 'log_detection',
                'isEnabled': True,
                'isDefault': True,
                'message': 'brute force',
                'tags': ['source:ssh'],
                'queries': [{'name': 'a', 'query': 'source:ssh @evt.outcome:failure', 'aggregation': 'count'}],
                'cases': [{'name': '', 'status': 'medium', 'condition': 'a > 5', 'notifications': []}],
                'options': {'evaluationWindow': 300, 'keepAlive': 3600, 'maxSignalDuration': 86400},
            }
        },
        'filters': {
            'sf-builtin': {
                'id': 'sf-builtin',
                'type': 'security_filters',
                'attributes': {
                    'name': 'all ingested logs',
                    'query': '',
                    'exclusion_filters': [],
                    'filtered_data_type': 'logs',
                    'is_builtin': True,
                    'is_enabled': True,
                    'version': 1,
                },
            }
        },
    }


class Organisation:
    def __init__(self, objects: dict[str, dict[str, dict]] | None = None):
        self.objects = other_teams() if objects is None else objects
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request answered
        self.refused: list[str] = []  # bodies the models refused: a defect of the command
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self._ids = itertools.count(5000)

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.requests if m != 'GET']

    # -- answers ------------------------------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict, headers, body: bytes) -> tuple[int, dict, object]:
        with self.lock:
            self.requests.append((method, path))
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.fullmatch(fault.path, path):
                    fault.times -= 1
                    return fault.status, fault.headers, {'errors': [f'injected {fault.status}']}
            if headers.get('DD-API-KEY') != API_KEY or headers.get('DD-APPLICATION-KEY') != APP_KEY:
                return 403, {}, {'errors': ['Forbidden']}
            for route_method, pattern, collection, model, action in ROUTES:
                match = re.fullmatch(pattern, path)
                if route_method == method and match:
                    return self._route(collection, model, action, match.groupdict().get('id'), query, body)
            return 404, {}, {'errors': [f'no route {method} {path}']}

    def _route(self, collection, model, action, object_id, query, body):
        store = self.objects.setdefault(collection, {})
        if model is not None:
            try:
                payload = json.loads(body)
                strict_model(payload, model)
            except Exception as e:  # the models' own errors, and strict_model's assertion
                self.refused.append(f'{model.__name__}: {e}')
                return 400, {}, {'errors': [f'{model.__name__}: {e}']}
        if action == 'list':
            return 200, {}, self._list(collection, list(store.values()), query)
        if action == 'create':
            new_id = str(next(self._ids))
            store[new_id] = self._stored(collection, new_id, payload)
            return 200, {}, self._one(collection, store[new_id])
        if object_id not in store:
            return 404, {}, {'errors': ['Not found']}
        if action == 'get':
            return 200, {}, store[object_id]
        current = store[object_id]
        if collection == 'filters':
            current['attributes'].update(payload['data']['attributes'])
            current['attributes']['version'] += 1
        elif action == 'merge':
            current.update(payload)
        else:
            store[object_id] = {**self._stored(collection, object_id, payload), 'created_at': current.get('created_at')}
        return 200, {}, self._one(collection, store[object_id])

    def _stored(self, collection: str, new_id: str, payload: dict) -> dict:
        """The object as Datadog keeps it: an id, and fields the server adds (which a comparison must ignore)."""
        obj = copy.deepcopy(payload)
        if collection == 'dashboards':
            obj.update(id=new_id, author_handle='setup@example.com', created_at=NOW, url=f'/dashboard/{new_id}')
            for number, widget in enumerate(obj.get('widgets', []), 1):
                widget.setdefault('id', number)
        elif collection == 'monitors':
            obj.update(id=int(new_id), created=NOW, overall_state='No Data', multi=True)
            obj['options'] = {**obj.get('options', {}), 'silenced': {}, 'notification_preset_name': 'show_all'}
        elif collection == 'pipelines':
            obj.update(id=new_id, is_read_only=False, type='pipeline')
        elif collection == 'rules':
            obj.update(id=new_id, createdAt=1764849600000, isDefault=False, isDeleted=False, version=1)
        else:
            obj = {'id': new_id, 'type': 'security_filters', 'attributes': {**obj['data']['attributes']}}
            obj['attributes'].update(is_builtin=False, version=1)
        return obj

    def _one(self, collection: str, obj: dict):
        return {'data': obj} if collection == 'filters' else obj

    @staticmethod
    def _list(collection: str, items: list[dict], query: dict):
        def page(size_key, number_key, start_key=None):
            size = int(query.get(size_key, [len(items) or 1])[0])
            start = int(query.get(start_key, [0])[0]) if start_key else int(query.get(number_key, [0])[0]) * size
            return items[start : start + size]

        if collection == 'dashboards':
            keys = ('id', 'title', 'description', 'layout_type', 'author_handle', 'url', 'created_at')
            summaries = [{k: d[k] for k in keys if k in d} for d in page('count', None, 'start')]
            return {'dashboards': summaries}
        if collection == 'monitors':
            return page('page_size', 'page')
        if collection == 'rules':
            chosen = page('page[size]', 'page[number]')
            return {'data': chosen, 'meta': {'page': {'total_count': len(items), 'total_filtered_count': len(items)}}}
        if collection == 'filters':
            return {'data': items, 'meta': {}}
        return items


class _Handler(BaseHTTPRequestHandler):
    timeout = 10  # an idle connection is closed

    def _serve(self):
        url = urlsplit(self.path)
        length = int(self.headers.get('Content-Length') or 0)
        if length > MAX_BODY:
            self._send(413, {}, {'errors': ['too large']})
            return
        body = self.rfile.read(length) if length else b''
        status, headers, payload = self.server.organisation.answer(
            self.command, url.path, parse_qs(url.query), self.headers, body
        )
        self._send(status, headers, payload)

    def _send(self, status, headers, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, *args):
        pass


class ApiServer:
    def __init__(self, organisation: Organisation):
        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.organisation = organisation
        self.organisation = organisation
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)
