"""Copy the assets the Datadog-side command applies into the package, so the wheel carries them.

python -m devtools.package_assets          # rewrite datadog_checks/cis_kubernetes/assets/files/
python -m devtools.package_assets --check  # exit 1 when a copy differs from assets/
"""

from __future__ import annotations

import sys
from pathlib import Path

from datadog_checks.cis_kubernetes.assets import desired

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / 'assets'
NAMES = (*desired.DASHBOARD_FILES, *desired.MONITOR_FILES, desired.PIPELINE_FILE, *desired.RULE_FILES)


def stale() -> list[str]:
    expected = {name: (SOURCE / name).read_bytes() for name in NAMES}
    present = {p.relative_to(desired.FILES).as_posix() for p in desired.FILES.rglob('*') if p.is_file()}
    wrong = [
        n
        for n, data in expected.items()
        if not (desired.FILES / n).is_file() or (desired.FILES / n).read_bytes() != data
    ]
    return sorted({*wrong, *(present - set(expected))})


def main(argv: list[str]) -> int:
    names = stale()
    if '--check' in argv:
        for name in names:
            print(
                f'{desired.FILES.relative_to(ROOT)}/{name} differs from assets/: run python -m devtools.package_assets'
            )
        return 1 if names else 0
    for name in names:
        target = desired.FILES / name
        if name in NAMES:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((SOURCE / name).read_bytes())
        else:
            target.unlink()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
