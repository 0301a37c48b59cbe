"""Spec validation, settings, and the import-cost rule for the package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jupyter_deploy.errors import InvalidSpecError
from jupyter_deploy.settings import Settings, describe
from jupyter_deploy.spec import Autoscaling, DeploymentSpec, Resources, name_from_variable


def test_spec_round_trips_and_validates() -> None:
    spec = DeploymentSpec("churn", Autoscaling(1, 4, 8), Resources(0.25, 0, {"gpu_node": 1}))
    assert DeploymentSpec.from_dict(spec.to_dict()) == spec
    assert spec.route == "/churn"
    for bad in ["Churn", "1abc", "a b", "", "x" * 64, "a/b"]:
        with pytest.raises(InvalidSpecError, match="Invalid deployment name"):
            DeploymentSpec(bad)
    with pytest.raises(InvalidSpecError, match="max_replicas"):
        DeploymentSpec("a", Autoscaling(3, 2))
    with pytest.raises(InvalidSpecError, match="num_cpus"):
        DeploymentSpec("a", resources=Resources(num_cpus=-1))


def test_names_from_variables() -> None:
    assert name_from_variable("myModel") == "mymodel"
    assert name_from_variable("rf_2") == "rf_2"
    assert name_from_variable("_x") == "x"
    assert name_from_variable("2fast") == "model-2fast"


def test_settings_from_env_and_docs() -> None:
    s = Settings.from_env({"RAY_ADDRESS": "10.0.0.1:6379", "JD_HTTP_PORT": "9000"})
    assert s.ray_address == "10.0.0.1:6379" and s.http_port_int == 9000
    assert Settings.from_env({}).http_host == "127.0.0.1"
    variables = [v for v, _, _ in describe()]
    assert "RAY_ADDRESS" in variables and "JD_HTTP_PORT" in variables


def test_import_is_light() -> None:
    code = (
        "import sys, jupyter_deploy, jupyter_deploy.notebook.magics, jupyter_deploy.cli;"
        "heavy = [m for m in ('ray', 'bentoml', 'sklearn', 'pandas') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ingress_ports_follow_the_http_port(tmp_path: Any) -> None:
    from jupyter_deploy.control import ingress

    s = Settings.from_env({"JD_HOME": str(tmp_path), "JD_HTTP_PORT": "8480",
                           "JD_REPLICA_PORTS": "32000-32999"})  # fmt: skip
    env = ingress.environment(s)
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert env["RAY_SERVE_HAPROXY_STATS_PORT"] == "8884"
    assert env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"] == "32000"
    assert len(env["RAY_SERVE_HAPROXY_SOCKET_PATH"]) + 57 < 100  # unix socket path limit
    wrapper = env["RAY_SERVE_HAPROXY_BINARY_PATH"]
    assert os.access(wrapper, os.X_OK) and "127.0.0.1" in Path(wrapper).read_text()
    off = ingress.environment(Settings.from_env({"JD_HA_PROXY": "0"}))
    assert off == {"RAY_SERVE_ENABLE_HA_PROXY": "0"}
    public = Settings.from_env({"JD_HOME": str(tmp_path), "JD_HTTP_HOST": "0.0.0.0"})
    assert "RAY_SERVE_HAPROXY_BINARY_PATH" not in ingress.environment(public)


def test_a_crashed_head_is_not_taken_for_a_running_one() -> None:
    """A head killed under the kernel that started it stays a zombie child: not alive."""
    import time

    from jupyter_deploy.control.cluster import _pid_alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(f"/proc/{child.pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.05)
    assert _pid_alive(child.pid) is False
    assert _pid_alive(os.getpid()) is True
