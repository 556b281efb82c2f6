"""Load and run the check the way the Datadog Agent does, in a clean interpreter: `python -S agent_loader.py NAME`.

The Agent imports `datadog_checks.<name>` (an installed wheel) and falls back to a bare `<name>` (a checks.d file),
then takes the first class, by name in dir(module), that subclasses AgentCheck and has no subclass itself. Prints
JSON: where the module came from, the class, and what one run() submitted.
"""

import importlib
import inspect
import json
import sys

from datadog_checks.base import AgentCheck
from datadog_checks.base.stubs import aggregator


def import_check_module(name: str):
    try:
        return importlib.import_module(f'datadog_checks.{name}')
    except ImportError:
        return importlib.import_module(name)


def agent_check_class(module):
    for attribute in dir(module):
        candidate = getattr(module, attribute)
        if inspect.isclass(candidate) and issubclass(candidate, AgentCheck) and not candidate.__subclasses__():
            return candidate
    raise LookupError('no leaf AgentCheck subclass')


def main(name: str) -> None:
    module = import_check_module(name)
    cls = agent_check_class(module)
    check = cls(name, {}, [{}])
    check.check_id = f'{name}:agent-loader'
    error = check.run()
    print(
        json.dumps(
            {
                'module': module.__name__,
                'file': module.__file__,
                'class': cls.__name__,
                'error': error,
                'service_checks': [
                    [s.name, s.status, s.message]
                    for n in aggregator._service_checks
                    for s in aggregator.service_checks(n)
                ],
                'metrics': sorted(aggregator._metrics),
            }
        )
    )


if __name__ == '__main__':
    main(sys.argv[1])
