"""Segments on a real endpoint: per-value counts, predictions, accuracy and gaps.

The truth is computed here from the model and the rows sent; the deployment's figures
come from its replicas through the aggregator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import wait_for
from test_explain import people

import jupyter_deploy as jd
from jupyter_deploy.errors import InvalidSpecError
from jupyter_deploy.monitoring.segments import SegmentCounts, _gaps, report
from jupyter_deploy.notebook.charts import segments_table
from jupyter_deploy.spec import DeploymentSpec, DriftThresholds, FairnessThresholds


def test_gaps_are_flagged_only_past_the_thresholds_and_min_count() -> None:
    segs = {"sex": {"F": SegmentCounts(rows=100, feedback=100, correct=90),
                    "M": SegmentCounts(rows=100, feedback=100, correct=70),
                    "X": SegmentCounts(rows=3, feedback=3, correct=0)}}  # fmt: skip
    segs["sex"]["F"].predicted.update({"1": 60, "0": 40})
    segs["sex"]["M"].predicted.update({"1": 45, "0": 55})
    segs["sex"]["X"].predicted.update({"0": 3})
    out = report(segs, True, None, DriftThresholds(), FairnessThresholds())["sex"]
    assert out["parity_difference"] == pytest.approx(0.15)  # X has too few rows to count
    assert out["accuracy_difference"] == pytest.approx(0.2)
    assert out["flagged"] and "parity" in out["reason"] and "accuracy" in out["reason"]
    loose = _gaps(out["values"], True, FairnessThresholds(parity_gap=0.5, accuracy_gap=0.5))
    assert not loose["flagged"]
    table = segments_table({"available": True, "columns": {"sex": out}})
    assert "⚠ sex: parity difference 0.15" in table and "1 60%" in table
    with pytest.raises(InvalidSpecError, match="parity_gap"):
        DeploymentSpec("x", fairness={"parity_gap": 2})
    with pytest.raises(InvalidSpecError, match="Unknown fairness"):
        DeploymentSpec("x", fairness={"gap": 0.1})


@pytest.mark.cluster
def test_segment_figures_match_the_truth(cluster: Any) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    x, y = people()
    pre = ColumnTransformer([("cat", OneHotEncoder(), ["sex", "region"])], remainder="passthrough")
    model = make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(x, y)
    with pytest.raises(InvalidSpecError, match="not input columns"):
        jd.deploy(model, name="segbad", sample=x, segments=["gender"], progress=False)
    dep = jd.deploy(model, name="segmented", sample=x, segments=["sex", "region"],
                    fairness={"min_count": 5}, progress=False)  # fmt: skip
    try:
        ids, sent = [], []
        for start in range(0, 120, 8):
            batch = x.iloc[start : start + 8]
            dep.predict(batch)
            ids.append(dep.last_request_id)
            sent.append(batch)
        rows = x.iloc[:120]
        predicted = model.predict(rows)
        labels = y[:120]
        # Labels for the first half of the requests only.
        dep.feedback(ids[:8], [labels[i * 8 : i * 8 + 8].tolist() for i in range(8)])

        def done() -> Any:
            out = dep.segments()
            cols = out.get("columns", {})
            got = sum(v["rows"] for v in cols.get("sex", {}).get("values", {}).values())
            labelled = sum(v["labels"] for v in cols.get("sex", {}).get("values", {}).values())
            return out if got == 120 and labelled == 64 else None

        out = wait_for(done, 30, "120 rows and 64 labels in the segments")
        for col in ("sex", "region"):
            for value, item in out["columns"][col]["values"].items():
                mask = (rows[col] == value).to_numpy()
                assert item["rows"] == mask.sum()
                share1 = float((predicted[mask] == 1).mean())
                assert item["predictions"].get("1", 0.0) == pytest.approx(share1)
                lab = mask[:64]
                truth = float((predicted[:64][lab] == labels[:64][lab]).mean())
                assert item["accuracy"] == pytest.approx(truth)
            shares = [float((predicted[(rows[col] == v).to_numpy()] == 1).mean())
                      for v in out["columns"][col]["values"]]  # fmt: skip
            assert out["columns"][col]["parity_difference"] == pytest.approx(
                max(shares) - min(shares)
            )
        assert out["flagged"] == [c for c in ("sex", "region") if out["columns"][c]["flagged"]]
        assert np.isfinite(out["columns"]["region"]["accuracy_difference"])
        monitor = dep.monitor()  # the dashboard's segment table, from the same report
        monitor.refresh_quality()
        assert "region:" in monitor.segments.value and "north" in monitor.segments.value
    finally:
        jd.undeploy("segmented")


def test_feedback_on_state_saved_before_segments_still_counts() -> None:
    from jupyter_deploy.monitoring.metrics import Observed
    from jupyter_deploy.monitoring.quality import Quality

    quality = Quality()
    quality.register(1, {"task": "classification"})
    del quality.references[1].segments  # a reference unpickled from an older store
    quality.push(1, Observed({"r1": [1]}))
    assert quality.feedback([{"request_id": "r1", "label": 1}])["matched"] == 1
    assert quality.segments()["available"] is False
