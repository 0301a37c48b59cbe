#!/usr/bin/env bash
# The whole test suite: set up, lint and type-check, run pytest, smoke-run the benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

.venv/bin/ruff check jupyter_deploy tests bench examples
.venv/bin/ruff format --check jupyter_deploy tests bench examples
.venv/bin/mypy

set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then  # pytest: no tests collected; not a failure of the code
  echo "pytest collected no tests"
  status=0
fi
[ "$status" -eq 0 ] || exit "$status"

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
