"""Spec validation, settings, and the import-cost rule for the package."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from jupyter_deploy import cli
from jupyter_deploy.errors import ClusterError, InvalidSpecError
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


def test_a_setting_that_must_be_a_number_fails_in_one_line(monkeypatch: Any, capsys: Any) -> None:
    for var, value, said in [
        ("JD_RAY_PORT", "", "JD_RAY_PORT must be a whole number from 1 to 65533, got ''"),
        ("JD_HTTP_PORT", "80a", "JD_HTTP_PORT must be a whole number from 1 to 65535"),
        ("JD_START_TIMEOUT", "0", "JD_START_TIMEOUT must be a number from 1 to 86400"),
        ("JD_OBJECT_STORE_MB", "10", "JD_OBJECT_STORE_MB must be a number at least 75"),
        ("JD_NUM_CPUS", "0.5", "JD_NUM_CPUS must be a whole number at least 1, got '0.5'"),
    ]:
        with pytest.raises(ClusterError, match=re.escape(said)):
            Settings.from_env({var: value})
    assert Settings.from_env({"JD_OBJECT_STORE_MB": "", "JD_NUM_CPUS": "3"}).cpus() == 3.0
    # What a user sees: one line on stderr, no traceback.
    monkeypatch.setenv("JD_RAY_PORT", "")
    assert cli.main(["cluster", "status"]) != 0
    err = capsys.readouterr().err
    assert err == "error: JD_RAY_PORT must be a whole number from 1 to 65533, got ''\n"


def test_import_is_light() -> None:
    code = (
        "import sys, jupyter_deploy, jupyter_deploy.notebook.magics, jupyter_deploy.cli;"
        "heavy = [m for m in ('ray', 'bentoml', 'sklearn', 'pandas') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_haproxy_files_live_in_a_private_folder_no_one_else_can_plant(monkeypatch: Any) -> None:
    import tempfile

    from jupyter_deploy.control import ingress
    from jupyter_deploy.errors import UnsafePathError

    runtime = Path(tempfile.mkdtemp(prefix="jd", dir="/tmp"))  # short, like /run/user/<uid>
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    s = Settings.from_env({"JD_HTTP_PORT": "8480"})
    try:
        (runtime / "elsewhere").mkdir()
        (runtime / "jd").symlink_to(runtime / "elsewhere")  # planted: a link to follow
        with pytest.raises(UnsafePathError, match="not a directory owned by you"):
            ingress.runtime_dir(s)
        (runtime / "jd").unlink()
        (runtime / "jd").mkdir(mode=0o777)
        (runtime / "jd").chmod(0o777)  # ours but open (an older version): tightened
        folder = ingress.runtime_dir(s)
        assert folder == runtime / "jd" / "haproxy-8480"
        assert all(p.stat().st_mode & 0o777 == 0o700 for p in (folder, folder.parent))
        if os.getuid() == 0:  # only root can give a folder away to show the refusal
            os.chown(folder, 12345, 12345)
            with pytest.raises(UnsafePathError, match="not a directory owned by you"):
                ingress.runtime_dir(s)
    finally:
        shutil.rmtree(runtime)


def test_ingress_ports_follow_the_http_port(tmp_path: Any) -> None:
    from jupyter_deploy.control import ingress

    s = Settings.from_env({"JD_HOME": str(tmp_path), "JD_HTTP_PORT": "8480",
                           "JD_REPLICA_PORTS": "32000-32999"})  # fmt: skip
    env = ingress.environment(s)
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert env["RAY_SERVE_HAPROXY_STATS_PORT"] == "8884"
    assert env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"] == "32000"
    sock = Path(env["RAY_SERVE_HAPROXY_SOCKET_PATH"])
    assert len(str(sock)) + 57 < 100  # unix socket path limit
    assert (
        sock.parent.stat().st_mode & 0o777
    ) == 0o700 and sock.parent.stat().st_uid == os.getuid()
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
