#!/usr/bin/env bash
# The whole test suite: set up, lint and type-check, run pytest, smoke-run the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

.venv/bin/ruff check jupyter_deploy tests bench examples
.venv/bin/ruff format --check jupyter_deploy tests bench examples
.venv/bin/mypy

set +e
.venv/bin/python -m pytest --durations=15 "$@"  # the slowest tests, to keep CI short
status=$?
set -e
if [ "$status" -eq 5 ]; then  # pytest: no tests collected; not a failure of the code
  echo "pytest collected no tests"
  status=0
fi
[ "$status" -eq 0 ] || exit "$status"

# The Deploy panel: TypeScript lint and unit tests, then its UI test (Galata, headless
# Debian Chromium) in a real JupyterLab, with a cluster on ports of its own.
(cd labextension && npm run --silent lint:check && npx jest --silent)
(
  export JD_RAY_PORT="${JD_RAY_PORT:-6680}" JD_HTTP_PORT="${JD_HTTP_PORT:-8680}"
  export JD_REPLICA_PORTS="${JD_REPLICA_PORTS:-33600-33999}" JD_UI_PORT="${JD_UI_PORT:-8890}"
  cd labextension/ui-tests && npx playwright test
)

# The benchmark must not rot: a short run, no assertions on its timings, on a cluster of
# its own (ports and homes apart from a developer's), stopped afterwards.
bench_dir="$(mktemp -d "${TMPDIR:-/tmp}/jd-bench-smoke.XXXXXX")"
export JD_HOME="$bench_dir/home" BENTOML_HOME="$bench_dir/bentoml"
export JD_RAY_PORT=6580 JD_HTTP_PORT=8580 JD_REPLICA_PORTS=33000-33500
set +e
.venv/bin/python bench/run.py --smoke --cold --out "$bench_dir/out"
status=$?
set -e
.venv/bin/jupyter-deploy cluster stop
exit "$status"
