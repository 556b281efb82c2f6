#!/usr/bin/env bash
# The project's one entry point.
#   ./dev.sh check   run the check once and print what the Agent would receive (with stand-ins if no apiserver);
#                    its environment (.venv-check) holds only what the Agent ships, so it is made in seconds
#   ./dev.sh test    lint (ruff) and the whole test suite (pytest)
#   ./dev.sh bench   the performance benchmark (benchmarks/run.py; a few minutes)
#   ./dev.sh build   write checks.d/cis_kubernetes.py from the package, then deploy/ from that file, and copy
#                    the assets the Datadog-side command applies into the package
# Each creates its environment from setup.py on first use (and again when setup.py changes).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

ensure_venv() {  # ensure_venv DIR PIP-ARGS...
  local venv=$1 stamp
  shift
  stamp="$venv/.installed-$(sha256sum setup.py | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
    touch "$stamp"
  fi
}
dev_venv() { ensure_venv "$VENV" -e '.[dev]'; }

case "${1:-}" in
  check)
    # The check's runtime dependencies as the Agent ships them (setup.py's deps extra); the demo adds only the
    # standard library.
    ensure_venv "$VENV-check" -e '.[deps]'
    shift
    exec "$VENV-check/bin/python" -m devtools.demo "$@"
    ;;
  test)
    dev_venv
    shift
    "$VENV/bin/ruff" check .
    "$VENV/bin/ruff" format --check .
    # The check judges every kube-apiserver it can see and probes it on loopback: as root, the suite runs in PID and
    # network namespaces of its own (loopback up), so that an apiserver or a probe elsewhere on this machine (a kind
    # cluster, another checkout's tests or benchmark) can neither join the stand-ins it judges nor reach its servers.
    if [ "$(id -u)" = 0 ] && [ -z "${CISK_OWN_NAMESPACES:-}" ] && command -v ip >/dev/null \
        && unshare --pid --net --fork --mount-proc true 2>/dev/null; then
      exec env CISK_OWN_NAMESPACES=1 unshare --pid --net --fork --mount-proc \
        sh -c 'ip link set lo up && exec "$0" -m pytest "$@"' "$VENV/bin/python" "$@"
    fi
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  build)
    dev_venv
    "$VENV/bin/python" -m devtools.amalgamate
    "$VENV/bin/python" -m devtools.package_assets
    exec "$VENV/bin/python" -m devtools.render_deploy
    ;;
  bench)
    dev_venv
    shift
    exec "$VENV/bin/python" -m benchmarks.run "$@"
    ;;
  *)
    sed -n '2,7p' "$0"
    exit 2
    ;;
esac
