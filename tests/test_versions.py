"""Versions: zero-failure rollout and rollback under traffic, failed versions, other kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import cloudpickle
import httpx
import numpy as np
import pytest
from conftest import Load, wait_for

import jupyter_deploy as jd
from jupyter_deploy.errors import DeploymentFailedError, RollbackError

pytestmark = pytest.mark.cluster
# Classes defined here must travel by value, as notebook classes do.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

ROW = [[5.1, 3.5, 1.4, 0.2]]


def _model(c: float, iris: tuple[Any, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=300).fit(iris[0].to_numpy(), iris[1])


def _running(name: str) -> set[str]:
    from jupyter_deploy.rollout import readiness

    return set(readiness.running_ids(name))


def test_new_version_and_rollback_under_traffic(cluster: Any, iris: tuple[Any, Any]) -> None:
    v1 = jd.deploy(_model(1.0, iris), name="rolling", progress=False)
    assert v1.version == 1
    replicas = _running("rolling")
    with Load(v1) as traffic:
        time.sleep(1)
        v2 = jd.deploy(_model(0.01, iris), name="rolling", progress=False)
        time.sleep(1)
    assert v2.version == 2 and v2.token == v1.token  # clients keep their token
    assert _running("rolling") == replicas  # same settings: loaded in place, no new process
    assert traffic.failures() == []
    assert traffic.versions()["1"] > 0 and traffic.versions()["2"] > 0
    assert len(traffic.results) > 20

    history = v2.versions()
    assert [h["version"] for h in history] == [1, 2]
    assert history[0]["bento_tag"] != history[1]["bento_tag"] and history[1]["live"]

    with Load(v2) as traffic:
        time.sleep(1)
        back = v2.rollback()
        time.sleep(1)
    assert back.version == 1 and traffic.failures() == []
    assert back.predict(ROW).tolist() == _model(1.0, iris).predict(ROW).tolist()
    assert _running("rolling") == replicas
    with pytest.raises(RollbackError, match="no version before v1"):
        back.rollback()
    back.delete()
    assert "rolling" not in [d.name for d in jd.list_deployments()]


def test_new_settings_roll_out_new_replicas(cluster: Any, iris: tuple[Any, Any]) -> None:
    v1 = jd.deploy(_model(1.0, iris), name="resized", progress=False)
    replicas = _running("resized")
    with Load(v1) as traffic:
        time.sleep(1)
        v2 = jd.deploy(_model(0.01, iris), name="resized", max_batch_rows=50, progress=False)
        time.sleep(1)
    assert traffic.failures() == [] and traffic.versions()["2"] > 0
    assert v2.version == 2 and not _running("resized") & replicas  # a surge of new replicas
    too_many = {"instances": ROW * 51}
    r = httpx.post(
        f"{v2.url}/predict", json=too_many, headers={"Authorization": f"Bearer {v2.token}"}
    )
    assert r.status_code == 413
    v2.delete()


class FailsOnReplica:
    """Predicts in the kernel, but refuses to be unpickled anywhere else."""

    def __init__(self) -> None:
        self.pid = os.getpid()

    def predict(self, x: Any) -> Any:
        return np.zeros(len(x))

    def __setstate__(self, state: dict[str, Any]) -> None:
        if state["pid"] != os.getpid():
            raise RuntimeError("this model cannot load outside its kernel")
        self.__dict__.update(state)


def test_failed_version_leaves_the_previous_one_serving(cluster: Any,
                                                        iris: tuple[Any, Any]) -> None:  # fmt: skip
    good = jd.deploy(_model(1.0, iris), name="fragile", progress=False)
    with pytest.raises(DeploymentFailedError) as info:
        jd.deploy(FailsOnReplica(), name="fragile", sample=np.ones((3, 4)), progress=False,
                  timeout=120)  # fmt: skip
    assert "cannot load outside its kernel" in str(info.value)
    assert "Version 1 keeps serving" in str(info.value)
    again = jd.get("fragile")
    assert again.version == 1 and [v["version"] for v in again.versions()] == [1]
    assert again.predict(ROW).tolist() == good.predict(ROW).tolist()
    again.delete()


def test_another_process_sees_the_same_deployments(iris_dep: Any) -> None:
    code = (  # only hashes are stored: another process makes a key of its own to call
        "import json, jupyter_deploy as jd\n"
        "d = jd.get('iris')\n"
        "token = d.token\n"
        "d.create_key('another-process', scopes=['predict'])\n"
        "print(json.dumps({'version': d.version, 'token': token, 'url': d.url,\n"
        "  'names': [x.name for x in jd.list_deployments()],\n"
        "  'pred': d.predict([[5.1, 3.5, 1.4, 0.2]]).tolist()}))\n"
        "d.revoke_key('another-process')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=os.environ.copy())  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["version"] == iris_dep.version and seen["token"] is None
    assert iris_dep.token is not None  # the kernel that deployed keeps its first key
    assert seen["url"] == iris_dep.url and "iris" in seen["names"]
    assert seen["pred"] == iris_dep.predict(ROW).tolist()


def test_scale_changes_the_range_without_restarting(cluster: Any, iris: tuple[Any, Any]) -> None:
    from jupyter_deploy import _ray

    dep = jd.deploy(_model(1.0, iris), name="scaled", max_replicas=1, num_cpus=0.25,
                    progress=False)  # fmt: skip
    try:
        first = {r.replica_id for r in _ray.app_details("scaled").replicas}
        scaled = dep.scale(2, 3)
        assert scaled.spec["autoscaling"]["min_replicas"] == 2 and scaled.version == 1

        def two_running() -> set[str] | None:
            running = _running("scaled")
            return running if len(running) == 2 else None

        running = wait_for(two_running, 60, "a second replica")
        assert first <= running  # the original replica kept running: nothing restarted
        assert jd.get("scaled").spec["autoscaling"]["max_replicas"] == 3
    finally:
        dep.delete()
