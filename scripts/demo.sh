#!/usr/bin/env bash
# The main job: set up, then train a model, deploy it on the embedded local Ray, query it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/demo.py "$@"
