"""Two versions live at once, on the real cluster: splits, stickiness, shadows, promotion."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cloudpickle
import httpx
import numpy as np
import pytest
from conftest import Load, wait_for

import jupyter_deploy as jd
from jupyter_deploy.errors import InvalidSpecError

pytestmark = pytest.mark.cluster
cloudpickle.register_pickle_by_value(sys.modules[__name__])
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def _model(c: float, iris: tuple[Any, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=500).fit(*iris)


class RaisesOnReplica:
    """Predicts in the kernel (so it deploys), raises on every request in a replica."""

    def __init__(self, model: Any) -> None:
        self.model, self.pid = model, os.getpid()

    def predict(self, x: Any) -> Any:
        if os.getpid() != self.pid:
            raise RuntimeError("this shadow is broken")
        return self.model.predict(x)


def _versions(dep: Any, n: int, headers: dict[str, str] | None = None) -> Counter[str]:
    """Send ``n`` one-row requests on 8 connections; count the versions that answered."""
    auth = {"Authorization": f"Bearer {dep.token}", **(headers or {})}

    def one(i: int) -> str:
        r = httpx.post(f"{dep.url}/predict", json={"instances": [ROW]}, headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        return r.headers["x-model-version"]

    with ThreadPoolExecutor(8) as pool:
        return Counter(pool.map(one, range(n)))


@pytest.fixture(scope="module")
def split_dep(cluster: Any, iris: tuple[Any, Any]) -> Any:
    jd.deploy(_model(0.01, iris), name="ab", sample=iris[0], progress=False)
    dep = jd.deploy(_model(1.0, iris), name="ab", sample=iris[0], progress=False)
    yield dep
    jd.undeploy("ab")


def test_a_split_shares_requests_by_weight(split_dep: Any) -> None:
    dep = split_dep.split({1: 0.9, 2: 0.1})
    assert dep.traffic()["weights"] == {1: 0.9, 2: 0.1} and dep.version == 2
    seen = _versions(dep, 3000)
    assert abs(seen["2"] / 3000 - 0.10) <= 0.03, seen
    assert jd.get("ab")._record.traffic is not None  # the split is desired state
    (table,) = wait_for(lambda: ((t := dep.compare(window_s=900))["requests"].sum() >= 3000
                        and (t,)), 60, "the split's counts")  # fmt: skip
    assert list(table.index) == [2, 1] and list(table["role"]) == ["baseline", "split"]
    assert table.loc[1, "requests"] == seen["1"] and table.loc[2, "requests"] == seen["2"]
    assert table.loc[1, "error_rate"] == 0.0 and table.loc[1, "share"] == 0.9
    assert table.loc[1, "error_rate_vs_baseline"]["diff"] == 0.0
    monitor = dep.monitor()
    monitor.refresh_versions()  # %monitor shows the live versions side by side
    assert "v2 baseline" in monitor.versions.value and "v1 split" in monitor.versions.value
    assert "90%" in monitor.versions.value and "10%" in monitor.versions.value


def test_sticky_keys_reach_one_version(split_dep: Any) -> None:
    dep = split_dep.split({1: 0.5, 2: 0.5}, sticky="sepal_length")
    first = {}
    for i in range(300):
        key = f"customer-{i}"
        first[key] = _versions(dep, 2, {"x-jd-key": key})
        assert len(first[key]) == 1, (key, first[key])  # both requests, one version
    per_version = Counter(next(iter(c)) for c in first.values())
    assert 100 < per_version["1"] < 200, per_version


def test_explain_uses_the_version_the_split_picks(split_dep: Any, iris: tuple[Any, Any]) -> None:
    dep = split_dep.split({1: 0.5, 2: 0.5}, sticky="sepal_length")
    auth = {"Authorization": f"Bearer {dep.token}"}
    rows = iris[0].drop_duplicates("sepal_length").head(12)
    seen = set()
    for _, row in rows.iterrows():
        body = {"instances": [row.to_dict()]}  # the sticky field picks the version
        served = httpx.post(f"{dep.url}/predict", json=body, headers=auth, timeout=30)
        explained = httpx.post(f"{dep.url}/explain", json=body, headers=auth, timeout=30)
        assert explained.status_code == 200, explained.text
        answer = explained.json()
        assert answer["version"] == int(served.headers["x-model-version"])
        assert explained.headers["x-model-version"] == served.headers["x-model-version"]
        assert answer["predictions"] == served.json()["predictions"]
        seen.add(answer["version"])
        frame = dep.explain(row.to_frame().T.astype(float))
        assert frame.attrs["version"] == answer["version"]
        assert np.allclose(frame[list(row.index)].to_numpy(), [list(answer["explanations"][0]
                                                                  .values())])  # fmt: skip
    assert seen == {1, 2}  # 12 keys at 50/50 reach both (a miss is 2 * 0.5**12)
    dep = dep.split({1: 1.0, 2: 0.0})  # v1 alone: explained without a split
    wait_for(lambda: dep.explain(rows.head(1)).attrs["version"] == 1, 30, "v1 explaining")
    dep.promote()


def test_weight_changes_under_traffic_fail_no_request(split_dep: Any) -> None:
    dep = split_dep.split({1: 0.5, 2: 0.5})
    with Load(dep, row=[ROW]) as load:
        time.sleep(1)
        dep = dep.split({1: 0.2, 2: 0.8})
        time.sleep(0.5)
        dep = dep.rollback()  # all traffic back to the live version (v2)
        time.sleep(0.5)
        dep = dep.split({1: 1.0, 2: 0.0})  # v1 takes all: it becomes the live version
        time.sleep(0.5)
        dep = dep.promote()  # the newest (v2) takes all again
        time.sleep(0.5)
    assert load.failures() == [] and len(load.results) > 50
    assert dep.version == 2 and dep.traffic()["weights"] == {2: 1.0}
    assert set(load.versions()) == {"1", "2"}
    events = [e.event for e in jd.get("ab")._record.events][-4:]
    assert events == ["split", "rollback", "split", "promote"]


def test_bad_splits_change_nothing(split_dep: Any) -> None:
    before = jd.get("ab").traffic()
    for weights, message in [({1: 0.5, 2: 0.6}, "sum to 1"), ({1: 0.5, 9: 0.5}, "no version 9"),
                             ({1: -0.1, 2: 1.1}, ">= 0")]:  # fmt: skip
        with pytest.raises(InvalidSpecError, match=message):
            split_dep.split(weights)
    with pytest.raises(InvalidSpecError, match="not an input column"):
        split_dep.split({1: 0.5, 2: 0.5}, sticky="nope")
    with pytest.raises(InvalidSpecError, match="rate"):
        split_dep.shadow(1, rate=-1)
    assert jd.get("ab").traffic() == before


def test_a_failing_shadow_costs_callers_nothing(cluster: Any, iris: tuple[Any, Any]) -> None:
    x, _ = iris
    jd.deploy(_model(1.0, iris), name="mirrored", sample=x, progress=False)
    try:
        dep = jd.deploy(RaisesOnReplica(_model(0.1, iris)), name="mirrored", sample=x,
                        shadow=1.0, progress=False)  # fmt: skip
        assert dep.version == 1 and dep.traffic()["shadow"]["version"] == 2
        expected = _model(1.0, iris).predict(x.head(1)).tolist()
        started = time.time()
        ids = []
        for _ in range(20):
            assert dep.predict(x.head(1)).tolist() == expected  # the live answer, always
            ids.append(dep.last_request_id)

        def shadow_logged() -> Any:
            logs = dep.logs(since=started)
            shadows = logs[logs["shadow"]]
            return (shadows,) if len(shadows) >= 20 else None

        (shadows,) = wait_for(shadow_logged, 60, "the shadow's answers in the payload log")
        assert set(shadows["request_id"]) == set(ids)  # logged under the callers' request ids
        assert set(shadows["status"]) == {500} and set(shadows["version"]) == {2}
        stats = wait_for(lambda: (s := jd.get("mirrored").traffic()["shadow"])["failed"] >= 20
                         and s, 30, "the shadow's counts")  # fmt: skip
        assert stats["requests"] >= 20
        assert jd.get("mirrored").metrics()["by_status"].get("500", 0) == 0  # not traffic
        stopped = dep.shadow(None)
        assert stopped.traffic()["shadow"] is None
    finally:
        jd.undeploy("mirrored")


def test_a_healthy_shadow_agrees(cluster: Any, iris: tuple[Any, Any]) -> None:
    x, _ = iris
    jd.deploy(_model(1.0, iris), name="twin", sample=x, progress=False)
    try:
        dep = jd.deploy(_model(1.0, iris), name="twin", sample=x, shadow=1.0, progress=False)
        for _ in range(10):
            dep.predict(x.sample(5, random_state=1))
        stats = wait_for(lambda: (s := jd.get("twin").traffic()["shadow"])["requests"] >= 10
                         and s, 30, "the shadow's counts")  # fmt: skip
        assert stats["agreement"] == 1.0 and stats["failed"] == 0
        assert np.isclose(stats["rate"], 1.0)
    finally:
        jd.undeploy("twin")
