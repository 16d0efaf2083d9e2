#!/usr/bin/env bash
# The two commands of the README: `./dev.sh demo [options]` and `./dev.sh test [pytest args]`.
# Each creates ./.venv on first use (and refreshes it when pyproject.toml changes).
set -euo pipefail
cd "$(dirname "$0")"

pick_python() {
  for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 &&
       "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  echo "fabzone needs Python 3.11 or newer (apt-get install python3)" >&2
  return 1
}

ensure_venv() {
  local stamp=.venv/.fabzone-installed
  if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
    return 0
  fi
  local py; py=$(pick_python)
  if [ ! -x .venv/bin/python ]; then
    if ! "$py" -m venv .venv 2>/dev/null; then
      # Debian/Ubuntu ship venv separately (python3-venv); install it when we may.
      rm -rf .venv
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      else
        echo "python3 -m venv failed: run 'sudo apt-get install python3-venv' and try again" >&2
        exit 1
      fi
      "$py" -m venv .venv
    fi
  fi
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  demo) ensure_venv; exec .venv/bin/fabzone demo "$@" ;;
  test) ensure_venv; exec .venv/bin/python -m pytest "$@" ;;
  *) echo "usage: ./dev.sh demo [--port 8000 ...] | ./dev.sh test [pytest args]" >&2; exit 2 ;;
esac
