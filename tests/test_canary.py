"""Canaries on the real cluster: judged by the controller actor, not by the kernel."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import time
from typing import Any

import cloudpickle
import pytest
from conftest import Load, wait_for

import jupyter_deploy as jd
from jupyter_deploy.errors import InvalidSpecError

pytestmark = pytest.mark.cluster
cloudpickle.register_pickle_by_value(sys.modules[__name__])
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
FAST = {"steps": [0.3, 0.6, 1.0], "interval_s": 3, "min_requests": 15}


class FailsOnHalf:
    """Predicts in the kernel (so it deploys); in a replica, fails on half the requests."""

    def __init__(self, model: Any) -> None:
        self.model, self.pid = model, os.getpid()

    def predict(self, x: Any) -> Any:
        if os.getpid() != self.pid and random.random() < 0.5:
            raise RuntimeError("this canary is broken")
        return self.model.predict(x)


def _model(c: float, iris: tuple[Any, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=500).fit(*iris)


def test_a_failing_canary_goes_back_to_zero(cluster: Any, iris: tuple[Any, Any]) -> None:
    x, _ = iris
    base = jd.deploy(_model(1.0, iris), name="canary-bad", sample=x, progress=False)
    try:
        with Load(base, row=[ROW]) as load:
            time.sleep(0.5)
            started = time.time()
            dep = jd.deploy(FailsOnHalf(_model(0.1, iris)), name="canary-bad", sample=x,
                            canary=FAST, progress=False)  # fmt: skip
            assert dep.version == 1 and dep.traffic()["weights"] == {1: 0.7, 2: 0.3}

            def rolled_back() -> Any:
                canary = jd.get("canary-bad").traffic()["canary"]
                return canary if canary["state"] != "running" else None

            canary = wait_for(rolled_back, 2 * FAST["interval_s"] + 10, "the canary's rollback")
            took = time.time() - started
            time.sleep(1)
        assert canary["state"] == "rolled_back" and "error rate" in canary["reason"], canary
        # Decided within two intervals of the canary's start (the controller's own clock;
        # the test's wall clock, `took`, also holds the deploy and a loaded machine's waits).
        assert canary["ended"] - canary["started"] <= 2 * FAST["interval_s"], (canary, took)
        after = jd.get("canary-bad")
        assert after.version == 1 and after.traffic()["weights"] == {1: 1.0}
        assert after.predict(x.head(3)).tolist() == _model(1.0, iris).predict(x.head(3)).tolist()
        assert [e.event for e in after._record.events][-1] == "canary rollback"
        assert after._record.version(2).meta["failed"] == canary["reason"]
        served = [v for s, v in load.results if s == 200]
        assert served[-20:] == ["1"] * 20  # the baseline takes everything again
        assert all(s in (200, 500) for s, _ in load.results)  # no request lost to the switch
        with pytest.raises(InvalidSpecError, match="failed its canary"):
            after.split({1: 0.5, 2: 0.5})
    finally:
        jd.undeploy("canary-bad")


SCRIPT = """
import jupyter_deploy as jd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

x, y = load_iris(return_X_y=True, as_frame=True)
x.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
model = LogisticRegression(C=0.5, max_iter=500).fit(x, y)
dep = jd.deploy(model, name="canary-good", sample=x, canary={canary!r}, progress=False)
print("started", dep.traffic()["canary"]["state"])
"""


def test_a_healthy_canary_is_promoted_after_its_kernel_exits(
    cluster: Any, iris: tuple[Any, Any]
) -> None:
    x, _ = iris
    base = jd.deploy(_model(1.0, iris), name="canary-good", sample=x, progress=False)
    try:
        with Load(base, row=[ROW]) as load:
            kernel = subprocess.run([sys.executable, "-c", SCRIPT.format(canary=FAST)],
                                    capture_output=True, text=True, timeout=300)  # fmt: skip
            assert kernel.returncode == 0 and "started running" in kernel.stdout, kernel.stderr
            # The kernel that started the canary is gone: the controller carries on.
            canary = wait_for(lambda: (c := jd.get("canary-good").traffic()["canary"])["state"]
                              != "running" and c, 60, "the canary's promotion")  # fmt: skip
            time.sleep(1)
        assert canary["state"] == "promoted" and canary["share"] == 1.0, canary["reason"]
        dep = jd.get("canary-good")
        assert dep.version == 2 and dep.traffic()["weights"] == {2: 1.0}
        events = [e.event for e in dep._record.events]
        assert events[-3:] == ["canary start", "canary step", "canary promote"], events
        assert load.failures() == [] and load.versions()["2"] > 0
    finally:
        jd.undeploy("canary-good")


def test_a_canary_needs_a_live_version_and_a_sane_policy(
    cluster: Any, iris: tuple[Any, Any]
) -> None:
    x, _ = iris
    with pytest.raises(InvalidSpecError, match="live version"):
        jd.deploy(_model(1.0, iris), name="canary-first", sample=x, canary=0.1, progress=False)
    with pytest.raises(InvalidSpecError, match="steps"):
        jd.deploy(_model(1.0, iris), name="canary-first", sample=x, canary={"steps": [2]},
                  progress=False)  # fmt: skip
    assert "canary-first" not in [d.name for d in jd.list_deployments()]
    text = textwrap.dedent(str(jd.deploy.__doc__))
    assert "canary" in text
