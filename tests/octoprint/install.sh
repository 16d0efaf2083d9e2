#!/usr/bin/env bash
# Installs OctoPrint 1.11.8 (the tests' peer) into its own venv, once: it pins many packages
# (flask, Click, psutil, pydantic) and must not share fabzone's venv. Idempotent and quiet; CI keeps
# the directory between runs (.cache/ in the repo, or $FABZONE_OCTOPRINT_VENV).
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=1.11.8
VENV=${FABZONE_OCTOPRINT_VENV:-.cache/octoprint-venv}
STAMP="$VENV/.fabzone-octoprint-$VERSION"
[ -x "$VENV/bin/octoprint" ] && [ -f "$STAMP" ] && exit 0

# OctoPrint 1.11 needs Python < 3.14.
py=""
for candidate in python3.11 python3.12 python3.13 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
     "$candidate" -c 'import sys; sys.exit(not ((3, 9) <= sys.version_info < (3, 14)))' 2>/dev/null; then
    py=$candidate; break
  fi
done
[ -n "$py" ] || { echo "OctoPrint $VERSION needs Python 3.9-3.13" >&2; exit 1; }

rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$py" -m venv "$VENV"
log="$VENV/install.log"
# netifaces is built from source: gcc and the Python headers must be installed.
if ! "$VENV/bin/pip" install --disable-pip-version-check -q "OctoPrint==$VERSION" >"$log" 2>&1; then
  tail -20 "$log" >&2
  echo "installing OctoPrint $VERSION into $VENV failed (log: $log)" >&2
  exit 1
fi
touch "$STAMP"
