"""Render conf.yaml.example from assets/configuration/spec.yaml with Datadog's own tooling (datadog-checks-dev).

python -m devtools.sync_config          # rewrite both copies of conf.yaml.example
python -m devtools.sync_config --check  # exit 1 when they differ from the spec
"""

from __future__ import annotations

import sys
from pathlib import Path

from datadog_checks.cis_kubernetes.__about__ import __version__

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / 'assets' / 'configuration' / 'spec.yaml'
EXAMPLES = (ROOT / 'conf.yaml.example', ROOT / 'datadog_checks' / 'cis_kubernetes' / 'data' / 'conf.yaml.example')


def _example_consumer():
    """datadog-checks-dev's ExampleConsumer, loaded from its file: its package's __init__ also imports the model
    consumer, which needs the `cli` extra (datamodel-code-generator and a pinned ruff) that this project avoids."""
    import importlib.util

    from datadog_checks.dev.tooling import configuration

    path = Path(configuration.__file__).parent / 'consumers' / 'example.py'
    spec = importlib.util.spec_from_file_location('_datadog_example_consumer', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ExampleConsumer


def render_example() -> str:
    from datadog_checks.dev.tooling.configuration import ConfigSpec

    ExampleConsumer = _example_consumer()

    spec = ConfigSpec(SPEC.read_text(), source='cis_kubernetes', version=__version__)
    spec.load()
    if spec.errors:
        raise ValueError('\n'.join(spec.errors))
    ((contents, errors),) = ExampleConsumer(spec.data).render().values()
    if errors:
        raise ValueError('\n'.join(errors))
    return contents


def main(argv: list[str]) -> int:
    expected = render_example()
    stale = [path for path in EXAMPLES if not path.exists() or path.read_text() != expected]
    if '--check' in argv:
        for path in stale:
            print(f'{path.relative_to(ROOT)} differs from {SPEC.relative_to(ROOT)}: run python -m devtools.sync_config')
        return 1 if stale else 0
    for path in stale:
        path.write_text(expected)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
