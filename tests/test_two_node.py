"""A two-node Ray cluster on this machine: the replica's node gets the Bento via the cluster,
and a batch job scores across both nodes.

The worker node has its own empty BENTOML_HOME, and the replica is pinned to it with a
custom resource, so the only way it can load the model is through the cluster registry.
Batch tasks run on either node (Ray Data spreads them); each loads the Bento the same way.
One cluster serves the module's tests; each test drives it from a process of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    """``ray start --block``, again if the node timed out starting (Ray waits 30 s for the
    raylet to register, which a busy machine can miss; jd.start_cluster retries too)."""
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block"]
    cmd += ["--node-ip-address=127.0.0.1", "--num-cpus=2", "--disable-usage-stats", *args]
    for _ in range(3):
        out = open(log, "w")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
        wait_for(lambda p=proc: "Ray runtime started" in log.read_text() or p.poll() is not None,
                 120, f"ray start {args[0]}")  # fmt: skip
        if proc.poll() is None or "timed out during startup" not in log.read_text():
            break
        _terminate(proc.pid)  # what the failed start left behind (raylet, GCS)
    assert proc.poll() is None, log.read_text()[-3000:]
    return proc


BATCH_DRIVER = """
import json, sys
import numpy as np, pandas as pd
import jupyter_deploy as jd
from sklearn.linear_model import LogisticRegression
address, folder = sys.argv[1], sys.argv[2]
features = ["f0", "f1", "f2", "f3"]
rng = np.random.default_rng(3)
x = pd.DataFrame(rng.normal(size=(3000, 4)), columns=features)
model = LogisticRegression().fit(x.to_numpy(), (x.f0 > x.f1).astype(int))
dep = jd.deploy(model, name="remote-batch", sample=x, address=address, num_cpus=0.25,
                max_replicas=1, progress=False)
x["customer_id"] = np.arange(3000) * 7
bad = [5, 1500, 2999]
x.loc[bad, "f2"] = np.nan  # after deploying: the schema says f2 is never null
x.iloc[:1500].to_parquet(f"{folder}/part-0.parquet")
x.iloc[1500:].to_parquet(f"{folder}/part-1.parquet")
job = dep.batch(folder, f"{folder}.scores.parquet", keep=["customer_id"], workers=2,
                progress=False)
scored, errors = pd.read_parquet(job.output), pd.read_parquet(job.errors_output)
good = x.drop(index=bad)
print(json.dumps({
    "rows": job.rows, "failed": job.failed, "columns": list(scored.columns),
    "ids": scored.customer_id.tolist() == good.customer_id.tolist(),
    "same": bool((scored.prediction == model.predict(good[features].to_numpy())).all()),
    "error_rows": errors.row.tolist(), "error_ids": errors.customer_id.tolist(),
    "reasons": errors.error.tolist(),
}))
"""


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A head and a worker node (2 CPUs each), each with its own empty Bento store."""
    tmp_path = tmp_path_factory.mktemp("two-nodes")
    port = free_port()
    # Ray 2.60 refuses a second node without token auth; every process shares one token.
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.update(JD_HOME=str(tmp_path / "home"), JD_HTTP_PORT=str(free_port()))
    env.pop("RAY_ADDRESS", None)
    # Three separate Bento stores: where the driver builds, the head's, the worker's.
    homes = {k: tmp_path / f"{k}-bentoml" for k in ("driver", "head", "worker")}
    procs = []
    try:
        head_env = {**env, "BENTOML_HOME": str(homes["head"])}
        procs.append(_start(["--head", f"--port={port}", "--include-dashboard=false"],
                            head_env, tmp_path / "head.log"))  # fmt: skip
        worker_env = {**env, "BENTOML_HOME": str(homes["worker"])}
        procs.append(_start([f"--address=127.0.0.1:{port}", '--resources={"worker_node": 1}'],
                            worker_env, tmp_path / "worker.log"))  # fmt: skip
        yield {"address": f"127.0.0.1:{port}", "env": env, "homes": homes, "tmp": tmp_path}
    finally:
        for proc in reversed(procs):
            _terminate(proc.pid)
        time.sleep(0.5)
        assert all(session_pids(p.pid) == [] for p in procs)


def _drive(nodes: dict[str, Any], script: str, *args: str) -> dict[str, Any]:
    """Run ``script`` as a driver of the two-node cluster; its last line is JSON."""
    driver_env = {**nodes["env"], "BENTOML_HOME": str(nodes["homes"]["driver"])}
    out = subprocess.run([sys.executable, "-c", script, nodes["address"], *args],
                         env=driver_env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_replica_on_a_second_node_loads_the_bento_through_the_cluster(
    two_nodes: dict[str, Any],
) -> None:
    homes = two_nodes["homes"]
    seen = _drive(two_nodes, DRIVER)
    assert seen["served"] == seen["local"] and seen["version"] == 1
    name, version = seen["bento"].split(":")
    unpacked = homes["worker"] / "jupyter_deploy" / "bentos" / name / version
    assert (unpacked / "bento.yaml").exists() and (unpacked / "src" / "jd_runtime.py").exists()
    assert (homes["driver"] / "bentos" / name / version / "bento.yaml").exists()
    assert not (homes["head"] / "jupyter_deploy" / "bentos" / name).exists()  # no replica there


def test_batch_job_on_two_nodes_matches_predict_in_order_with_bad_rows_set_aside(
    two_nodes: dict[str, Any],
) -> None:
    folder = two_nodes["tmp"] / "batch-in"
    folder.mkdir()
    seen = _drive(two_nodes, BATCH_DRIVER, str(folder))
    assert (seen["rows"], seen["failed"]) == (3000, 3)
    assert seen["columns"] == ["customer_id", "prediction", "version"]
    assert seen["ids"] and seen["same"]  # kept column in input order, predictions equal
    assert seen["error_rows"] == [5, 1500, 2999]
    assert seen["error_ids"] == [35, 10500, 20993]
    assert all(r.startswith("column 'f2' is null") for r in seen["reasons"]), seen["reasons"]
