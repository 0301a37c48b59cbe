"""Global importance: mean |contribution| per input column, live traffic vs the reference."""

from __future__ import annotations

import itertools
import sys
from typing import Any

import cloudpickle
import pytest
from conftest import people, wait_for

import jupyter_deploy as jd
from jupyter_deploy.errors import InvalidSpecError
from jupyter_deploy.monitoring.importance import Importance, report
from jupyter_deploy.monitoring.metrics import Observed
from jupyter_deploy.monitoring.quality import Quality
from jupyter_deploy.notebook import charts
from jupyter_deploy.spec import DeploymentSpec

cloudpickle.register_pickle_by_value(sys.modules[__name__])
COLUMNS = ["age", "income", "sex", "region"]


def test_sums_add_up_across_replicas_and_seconds() -> None:
    a = Importance.of([{"x": -1.0, "y": 2.0}, {"x": 3.0, "y": 0.0}], "value")
    b = Importance.of([{"x": 2.0, "y": -4.0}], "value")
    a.merge(b)
    assert a.rows == 3 and a.means() == {"x": 2.0, "y": 2.0}
    quality = Quality()
    quality.register(1, {"columns": ["x", "y", "z"], "task": "regression",
                         "importance": {"rows": 9, "output": "value",
                                        "mean_abs": {"x": 1.0, "y": 3.0, "z": 0.5}}})  # fmt: skip
    quality.push(1, Observed(importance=Importance.of([{"x": 1.0, "y": 1.0, "z": 0.0}], "value")))
    quality.push(1, Observed(importance=Importance.of([{"x": 3.0, "y": 1.0, "z": 0.0}], "value")))
    got = quality.report()["importance"]
    assert got["rows"] == 2 and got["reference_rows"] == 9 and got["reason"] == ""
    assert got["columns"]["x"] == {"live": 2.0, "reference": 1.0}
    assert got["columns"]["z"] == {"live": 0.0, "reference": 0.5}
    svg = charts.importance(got)
    assert "importance" in svg and all(f">{c}<" in svg for c in "xyz")


def test_a_reference_of_another_output_is_not_compared() -> None:
    live = Importance.of([{"x": 1.0}], "probability of the predicted class")
    ref = {"rows": 5, "output": "margin of the predicted class", "mean_abs": {"x": 4.0}}
    got = report(["x"], live, ref)
    assert got["columns"]["x"] == {"live": 1.0, "reference": None}
    assert "margin" in got["reason"] and "probability" in got["reason"]
    empty = report(["x"], Importance(), None)
    assert not empty["available"] and "without a sample" in empty["reason"]


def test_the_rate_is_checked() -> None:
    for bad in (-1, float("nan"), 5000, "2"):
        with pytest.raises(InvalidSpecError, match="importance_rows_per_s"):
            DeploymentSpec(name="m", importance_rows_per_s=bad)  # type: ignore[arg-type]


def _linear(x: Any, y: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer([("cat", OneHotEncoder(), ["sex", "region"])],
                            remainder=StandardScaler())  # fmt: skip
    return make_pipeline(pre, LogisticRegression(max_iter=500)).fit(x, y)


@pytest.mark.cluster
def test_live_importance_follows_the_traffic(cluster: Any) -> None:
    x, y = people(300, seed=1)
    dep = jd.deploy(_linear(x, y), name="imp", sample=x, importance_rows_per_s=50,
                    progress=False)  # fmt: skip
    try:
        before = dep.importance()
        assert sorted(before["column"]) == sorted(COLUMNS) and before["live"].isna().all()
        assert before["reference"].notna().all() and before.attrs["reference_rows"] == 200
        assert "margin" in before.attrs["output"]

        fresh, _ = people(4000, seed=2)  # the training distribution, rows the model never saw
        batches = (fresh.iloc[i : i + 10] for i in itertools.count(0, 10))

        def explained(rows: int) -> Any:
            dep.predict(next(batches))
            frame = dep.importance()
            return (frame,) if frame.attrs["rows"] >= rows else None  # truthy: not a frame

        (same,) = wait_for(lambda: explained(150), 120, "150 live rows explained", 0.05)
        assert same["live"].notna().all() and same.attrs["reason"] == ""
        by = same.set_index("column")
        top = by["reference"].max()
        assert (abs(by["live"] - by["reference"]) < 0.25 * top).all(), by
        assert by["live"].idxmax() == by["reference"].idxmax() == "income"

        fresh["income"] += 40  # a shifted input: its contributions grow
        (shifted,) = wait_for(lambda: explained(same.attrs["rows"] + 450), 180,
                           "450 more live rows explained", 0.05)  # fmt: skip
        after = shifted.set_index("column")
        assert after.loc["income", "live"] > 1.8 * by.loc["income", "live"], (by, after)
        assert abs(after.loc["age", "live"] - by.loc["age", "live"]) < 0.3 * top

        monitor = dep.monitor(interval_s=60)
        monitor.refresh_quality()
        assert "importance (mean |contribution|)" in monitor.importance.value
        assert all(f">{c}<" in monitor.importance.value for c in COLUMNS)
        assert "importance" in monitor.snapshot_html()
    finally:
        jd.undeploy("imp")


@pytest.mark.cluster
def test_importance_off_explains_no_traffic(cluster: Any) -> None:
    x, y = people(300, seed=1)
    dep = jd.deploy(_linear(x, y), name="impoff", sample=x, importance_rows_per_s=0,
                    progress=False)  # fmt: skip
    try:
        for i in range(0, 200, 10):
            dep.predict(x.iloc[i : i + 10])
        wait_for(lambda: dep.drift()["features"][0]["n"] >= 200, 60, "the rows counted")
        frame = dep.importance()
        assert frame["live"].isna().all() and frame["reference"].isna().all()
        assert frame.attrs["rows"] == 0
    finally:
        jd.undeploy("impoff")


def test_slots_saved_before_importance_load_with_none() -> None:
    import pickle

    from jupyter_deploy.monitoring.quality import _Slot

    slot = _Slot(0, 1)
    del slot.__dict__["importance"]
    assert pickle.loads(pickle.dumps(slot)).importance.rows == 0
