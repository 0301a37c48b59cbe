#!/usr/bin/env bash
# Set up a fresh machine (Python 3.11, Node 20, apt/PyPI/npm reachable) for jupyter_deploy:
# a virtualenv in .venv with the package and its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "jupyter_deploy needs Python 3.11 (found $("$PYTHON" --version 2>&1)); set PYTHON=python3.11" >&2
  exit 1
fi

# wrk is the benchmark's load generator (bench/); Debian ships it.
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq wrk >/dev/null
fi

# Stream consumers are tested against a real Redis (Debian's redis-server, started by the
# test itself on a free loopback port; the package's own service is not used).
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

# The Deploy panel's UI tests drive Debian's Chromium (Playwright must not download one).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# The panel's TypeScript (labextension/) and its UI tests: exact dependencies from the lock
# files, installed again only when a lock file changed.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
for dir in labextension labextension/ui-tests; do
  if [ ! -f "$dir/node_modules/.package-lock.json" ] \
     || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
done

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import jupyter_deploy, ray, bentoml, sklearn" # fails loudly if the install did

# pip built the panel only if it was missing; rebuild it when its sources changed since,
# and link it into the venv so JupyterLab serves this build.
built=jupyter_deploy/labextension/package.json
if [ ! -f "$built" ] || [ -n "$(find labextension/src labextension/style labextension/schema \
    labextension/package.json -newer "$built" -print -quit)" ]; then
  (cd labextension && PATH="$PWD/../.venv/bin:$PATH" npm run --silent build:prod)
fi
PATH="$PWD/.venv/bin:$PATH" .venv/bin/jupyter labextension develop --overwrite . >/dev/null
