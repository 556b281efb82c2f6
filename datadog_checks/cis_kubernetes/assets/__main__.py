"""python -m datadog_checks.cis_kubernetes.assets plan|apply: the check's Datadog side in an organisation.

  plan    print what apply would do; writes nothing
  apply   create or update, by name, the dashboard, the three monitors, the logs pipeline, the two Cloud SIEM rules
          and a security filter for source:cis_kubernetes; objects it did not create are never changed or deleted

Keys from DD_API_KEY and DD_APP_KEY (an application key allowed to write dashboards, monitors, logs pipelines and
security rules and filters).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .desired import KINDS, desired_objects
from .plan import CONFLICT, CREATE, UNCHANGED, UPDATE, Step, step_for

USAGE_ERROR, API_ERROR, CONFLICT_ERROR = 2, 1, 3


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog='python -m datadog_checks.cis_kubernetes.assets',
        description=__doc__.split('\n\n', 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split('\n\n', 1)[1],
    )
    parse.add_argument('command', choices=('plan', 'apply'))
    parse.add_argument(
        '--site',
        default=os.environ.get('DD_SITE') or 'datadoghq.com',
        help="the organisation's Datadog site: datadoghq.com, datadoghq.eu, us3.datadoghq.com, us5.datadoghq.com, "
        'ap1.datadoghq.com, ddog-gov.com (default: DD_SITE, else datadoghq.com)',
    )
    parse.add_argument('--api-url', help='the API at this URL instead of the site (a proxy, a test server)')
    parse.add_argument(
        '--notify',
        action='append',
        default=[],
        metavar='@HANDLE',
        help='a recipient of every monitor (repeat for more): @user@example.com, @slack-channel, @pagerduty-service',
    )
    return parse


def main(argv: Sequence[str] | None = None, *, retries: int = 3, backoff: float = 2.0) -> int:
    args = parser().parse_args(argv)
    keys = {name: os.environ.get(name, '') for name in ('DD_API_KEY', 'DD_APP_KEY')}
    missing = [name for name, value in keys.items() if not value]
    if missing:
        return fail(f"set {' and '.join(missing)} (the organisation's API key and an application key)", USAGE_ERROR)
    try:
        desired = desired_objects(args.notify)
    except ValueError as e:
        return fail(str(e), USAGE_ERROR)
    try:  # only here: the check itself never needs the client
        from datadog_api_client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        from .organisation import Organisation, configuration
    except ImportError as e:
        return fail(f"{e}: install the command's extra, pip install 'datadog-cis-kubernetes[assets]'", USAGE_ERROR)
    try:
        config = configuration(keys['DD_API_KEY'], keys['DD_APP_KEY'], args.site, args.api_url, retries, backoff)
        host = config.host
    except ValueError as e:
        return fail(f'--site {args.site}: {e}', USAGE_ERROR)
    print(f'{args.command} against {host}')
    if not args.notify:
        print('note: no --notify: the monitors will page nobody')
    organisation = Organisation(config)
    done: list[Step] = []
    try:
        steps = []
        for kind in KINDS:
            existing = organisation.existing(kind)
            for item in (d for d in desired if d.kind == kind):
                steps.append(step_for(item, existing, lambda e, kind=kind: organisation.full(kind, e)))
        for step in steps:
            if args.command == 'plan' or step.verb in (UNCHANGED, CONFLICT):
                print(step.line())
        conflicts = [s for s in steps if s.verb == CONFLICT]
        if conflicts:
            return fail(f'{len(conflicts)} conflict(s): nothing was written', CONFLICT_ERROR)
        writes = [s for s in steps if s.verb in (CREATE, UPDATE)]
        if args.command == 'plan':
            print(f'plan: {len(writes)} to write, {len(steps) - len(writes)} unchanged; nothing was written')
            return 0
        for step in writes:
            if step.verb == CREATE:
                new_id = organisation.create(step.desired.kind, step.desired.body)
                done.append(Step('created', step.desired, new_id))
            else:
                organisation.update(step.desired.kind, step.id, step.desired.body)
                done.append(Step('updated', step.desired, step.id))
            print(done[-1].line())
        unchanged = sum(s.verb == UNCHANGED for s in steps)
        print(
            f'apply: {sum(s.verb == CREATE for s in writes)} created, {sum(s.verb == UPDATE for s in writes)} '
            f'updated, {unchanged} unchanged'
        )
        return 0
    except ApiException as e:
        return fail(api_error(e, done), API_ERROR)
    except (HTTPError, OSError) as e:  # the address cannot be reached
        return fail(f'{host} cannot be reached: {e}\n{applied(done)}', API_ERROR)
    finally:
        organisation.close()


def api_error(error, done: list[Step]) -> str:
    status = getattr(error, 'status', None)
    body = getattr(error, 'body', None)
    errors = body.get('errors') if isinstance(body, dict) else body
    what = {
        401: 'the API key or application key is not valid for this site',
        403: 'the keys are refused: an application key with write access to dashboards, monitors, logs pipelines '
        'and security rules and filters is needed',
        429: 'rate limited by the API, still after the retries',
    }.get(status, 'the API failed' if status and status >= 500 else 'the API refused the request')
    return f'{what} (HTTP {status} {getattr(error, "reason", "")}: {errors})\n{applied(done)}'


def applied(done: list[Step]) -> str:
    if not done:
        return 'Nothing was applied.'
    lines = '\n'.join(f'  {step.line()}' for step in done)
    return f'Already applied ({len(done)}), kept; run apply again to finish:\n{lines}'


def fail(message: str, code: int) -> int:
    print(f'error: {message}', file=sys.stderr)
    return code


if __name__ == '__main__':
    sys.exit(main())
