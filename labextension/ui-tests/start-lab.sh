#!/usr/bin/env bash
# JupyterLab for the UI tests: a fresh notebook folder, JD_HOME and Bento store of its own.
set -euo pipefail
cd "$(dirname "$0")"
: "${JD_UI_HOME:?set by playwright.config.js}"
rm -rf "$JD_UI_HOME"
mkdir -p "$JD_UI_HOME/root"
export JD_UI_ROOT="$JD_UI_HOME/root" JD_HOME="$JD_UI_HOME/home" BENTOML_HOME="$JD_UI_HOME/bentoml"
exec ../../.venv/bin/jupyter lab --config jupyter_server_test_config.py
