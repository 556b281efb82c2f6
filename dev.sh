#!/usr/bin/env bash
# The project's one entry point.
#   ./dev.sh check   run the check once and print what the Agent would receive (with stand-ins if no apiserver)
#   ./dev.sh test    lint (ruff) and the whole test suite (pytest)
#   ./dev.sh bench   the performance benchmark (benchmarks/run.py; a few minutes)
#   ./dev.sh build   write checks.d/cis_kubernetes.py from the package, then deploy/ from that file, and copy
#                    the assets the Datadog-side command applies into the package
# Each creates .venv from setup.py on first use (and again when setup.py changes).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

ensure_venv() {
  local stamp
  stamp="$VENV/.installed-$(sha256sum setup.py | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e '.[dev]'
    touch "$stamp"
  fi
}

case "${1:-}" in
  check)
    ensure_venv
    shift
    exec "$VENV/bin/python" -m devtools.demo "$@"
    ;;
  test)
    ensure_venv
    shift
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    # The check judges every kube-apiserver it can see: as root, the suite runs in its own PID namespace so that an
    # apiserver on this machine (a kind cluster, another checkout's test run) cannot join the stand-ins it judges.
    if [ "$(id -u)" = 0 ] && [ -z "${CISK_OWN_PID_NAMESPACE:-}" ] && unshare --pid --fork --mount-proc true 2>/dev/null; then
      exec env CISK_OWN_PID_NAMESPACE=1 unshare --pid --fork --mount-proc "$VENV/bin/python" -m pytest "$@"
    fi
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  build)
    ensure_venv
    "$VENV/bin/python" -m devtools.amalgamate
    "$VENV/bin/python" -m devtools.package_assets
    exec "$VENV/bin/python" -m devtools.render_deploy
    ;;
  bench)
    ensure_venv
    shift
    exec "$VENV/bin/python" -m benchmarks.run "$@"
    ;;
  *)
    sed -n '2,7p' "$0"
    exit 2
    ;;
esac
