"""A two-node Ray cluster on this machine: the replica's node gets the Bento via the cluster.

The worker node has its own empty BENTOML_HOME, and the replica is pinned to it with a
custom resource, so the only way it can load the model is through the cluster registry.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port, wait_for

from jupyter_deploy.control.cluster import _terminate, session_pids

pytestmark = pytest.mark.slow

DRIVER = """
import json, sys
import jupyter_deploy as jd
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
X, y = load_iris(return_X_y=True, as_frame=True)
model = DecisionTreeClassifier(random_state=0).fit(X, y)
dep = jd.deploy(model, name="remote", sample=X, address=sys.argv[1], num_cpus=0.5,
                resources={"worker_node": 0.5}, max_replicas=1, progress=False)
again = jd.get("remote", address=sys.argv[1])
print(json.dumps({"served": dep.predict(X).tolist(), "local": model.predict(X).tolist(),
                  "bento": dep.bento_tag, "version": again.version}))
"""


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block"]
    cmd += ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats", *args]
    out = open(log, "w")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)  # fmt: skip
    wait_for(lambda: "Ray runtime started" in log.read_text() or proc.poll() is not None,
             120, f"ray start {args[0]}")  # fmt: skip
    assert proc.poll() is None, log.read_text()[-3000:]
    return proc


def test_replica_on_a_second_node_loads_the_bento_through_the_cluster(tmp_path: Path) -> None:
    port = free_port()
    # Ray 2.60 refuses a second node without token auth; every process shares one token.
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.update(JD_HOME=str(tmp_path / "home"), JD_HTTP_PORT=str(free_port()))
    env.pop("RAY_ADDRESS", None)
    # Three separate Bento stores: where the driver builds, the head's, the worker's.
    homes = {k: tmp_path / f"{k}-bentoml" for k in ("driver", "head", "worker")}
    worker_home = homes["worker"]
    procs = []
    try:
        head_env = {**env, "BENTOML_HOME": str(homes["head"])}
        procs.append(_start(["--head", f"--port={port}", "--include-dashboard=false"],
                            head_env, tmp_path / "head.log"))  # fmt: skip
        worker_env = {**env, "BENTOML_HOME": str(worker_home)}
        procs.append(_start([f"--address=127.0.0.1:{port}", '--resources={"worker_node": 1}'],
                            worker_env, tmp_path / "worker.log"))  # fmt: skip
        driver_env = {**env, "BENTOML_HOME": str(homes["driver"])}
        out = subprocess.run([sys.executable, "-c", DRIVER, f"127.0.0.1:{port}"], env=driver_env,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        seen = json.loads(out.stdout.strip().splitlines()[-1])
        assert seen["served"] == seen["local"] and seen["version"] == 1
        name, version = seen["bento"].split(":")
        unpacked = worker_home / "jupyter_deploy" / "bentos" / name / version
        assert (unpacked / "bento.yaml").exists() and (unpacked / "src" / "jd_runtime.py").exists()
        assert (homes["driver"] / "bentos" / name / version / "bento.yaml").exists()
        assert not (homes["head"] / "jupyter_deploy").exists()  # no replica ran there
    finally:
        for proc in reversed(procs):
            _terminate(proc.pid)
        time.sleep(0.5)
        assert all(session_pids(p.pid) == [] for p in procs)
