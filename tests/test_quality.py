"""Drift, feedback and the payload log on real deployments of the shared cluster."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import wait_for

import jupyter_deploy as jd

pytestmark = pytest.mark.cluster
FEATURES = ["a", "b", "c"]


def _data(seed: int, n: int, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(0.0, 1.0, (n, 3)), columns=FEATURES)
    y = (x["a"] + 0.5 * x["b"] > 0).astype(int).to_numpy()
    x["b"] += shift  # after the labels: the world moved, the concept did not
    return x, y


@pytest.fixture(scope="module")
def drift_model() -> tuple[Any, pd.DataFrame]:
    from sklearn.linear_model import LogisticRegression

    x, y = _data(0, 2000)
    return LogisticRegression().fit(x, y), x


def _send(dep: Any, x: pd.DataFrame, rows: int = 50) -> list[str]:
    """Post ``x`` in requests of ``rows`` rows; the request ids of the answers."""
    ids = []
    headers = {"Authorization": f"Bearer {dep.token}"}
    with httpx.Client(timeout=30) as client:
        for start in range(0, len(x), rows):
            body = {"instances": x.iloc[start : start + rows].to_dict(orient="records")}
            r = client.post(f"{dep.url}/predict", json=body, headers=headers)
            assert r.status_code == 200, r.text
            assert r.json()["request_id"] == r.headers["x-request-id"]
            ids.append(r.headers["x-request-id"])
    return ids


def _report(dep: Any, rows: int) -> dict[str, Any]:
    def counted() -> dict[str, Any] | None:
        report = dep.drift(window_s=600)
        features = report.get("features", [])
        return report if features and all(f["n"] >= rows for f in features) else None

    return wait_for(counted, 30, f"{rows} rows counted for drift")


def test_drift_flags_a_shifted_feature_and_not_fresh_data(cluster: Any, drift_model: Any) -> None:
    model, train = drift_model
    same = jd.deploy(model, name="drift-same", sample=train, progress=False)
    shifted = jd.deploy(model, name="drift-shift", sample=train, progress=False)
    try:
        _send(same, _data(1, 600)[0])
        _send(shifted, _data(1, 600, shift=1.0)[0])  # b moved by one standard deviation
        fresh, moved = _report(same, 600), _report(shifted, 600)
        assert fresh["available"] and fresh["task"] == "classification"
        assert [f["feature"] for f in fresh["features"]] == FEATURES
        assert not any(f["drifted"] for f in fresh["features"]), fresh["features"]
        assert not any(f["drifted"] for f in fresh["predictions"])
        flagged = {f["feature"] for f in moved["features"] if f["drifted"]}
        assert flagged == {"b"}, moved["features"]
        # The predicted classes moved with b (50/50 to about 67/33): significant, but with a
        # PSI near 0.12, under the 0.2 that flags drift.
        prediction = moved["predictions"][0]
        assert prediction["p_value"] < 1e-6 and 0.05 < prediction["psi"] < 0.2, prediction
        hist = moved["histograms"]["b"]
        assert len(hist["labels"]) == len(hist["reference"]) == len(hist["live"])
        assert hist["n"] == 600 and abs(sum(hist["live"]) - 1) < 1e-6
        assert set(moved["prediction_histogram"]["prediction"]["labels"]) >= {"0", "1"}
    finally:
        same.delete()
        shifted.delete()


def test_without_a_sample_drift_says_why(cluster: Any, iris: tuple[Any, Any]) -> None:
    from sklearn.tree import DecisionTreeClassifier

    dep = jd.deploy(DecisionTreeClassifier(max_depth=2).fit(iris[0].to_numpy(), iris[1]),
                    name="nodrift", progress=False)  # fmt: skip
    try:
        dep.predict(iris[0].to_numpy()[:3])
        report = wait_for(lambda: dep.drift().get("version") and dep.drift(), 20, "a report")
        assert report["available"] is False and "without a sample" in report["reason"]
    finally:
        dep.delete()


def test_feedback_gives_the_true_accuracy(cluster: Any, drift_model: Any) -> None:
    model, train = drift_model
    dep = jd.deploy(model, name="graded", sample=train, progress=False)
    try:
        x, y = _data(2, 200)
        ids, predicted = [], []
        for i in range(0, 200, 10):  # 20 requests of 10 rows, each graded as a whole
            predicted.extend(dep.predict(x.iloc[i : i + 10]).tolist())
            ids.append(dep.last_request_id)
        result = dep.feedback(ids, [y[i : i + 10] for i in range(0, 200, 10)])
        assert result == {"matched": 20, "unknown": [], "wrong_length": []}
        truth = float(np.mean(np.asarray(predicted) == y))
        accuracy = dep.drift()["accuracy"]
        assert accuracy["labels"] == 200 and accuracy["accuracy"] == pytest.approx(truth)

        headers = {"Authorization": f"Bearer {dep.token}"}
        unknown = httpx.post(f"{dep.url}/feedback", headers=headers,
                             json={"request_id": "nope", "label": 1})  # fmt: skip
        assert unknown.status_code == 404 and "nope" in unknown.json()["error"]
        bad = httpx.post(f"{dep.url}/feedback", headers=headers, json={"label": 1})
        assert bad.status_code == 400 and "request_id" in bad.json()["error"]
    finally:
        dep.delete()


def test_payload_log_round_trips_and_outlives_replicas(cluster: Any, drift_model: Any) -> None:
    import ray

    from jupyter_deploy import _ray

    model, train = drift_model
    started = time.time()
    dep = jd.deploy(model, name="audited", sample=train, progress=False)
    try:
        x = _data(3, 30)[0]
        headers = {"Authorization": f"Bearer {dep.token}"}
        sent = {}
        for i in range(30):
            rid = f"audit-{i}"
            row = x.iloc[[i]].to_dict(orient="records")
            r = httpx.post(f"{dep.url}/predict", json={"instances": row},
                           headers={**headers, "x-request-id": rid})  # fmt: skip
            assert r.status_code == 200 and r.headers["x-request-id"] == rid
            sent[rid] = (row, r.json()["predictions"])
        bad = httpx.post(f"{dep.url}/predict", json={"instances": [{"a": 1}]},
                         headers={**headers, "x-request-id": "audit-bad"})  # fmt: skip
        assert bad.status_code == 400

        wait_for(lambda: len(dep.logs(since=started)) >= 31, 20, "31 records in the log")
        log = dep.logs(since=started)
        assert list(log["request_id"]) == [*sent, "audit-bad"]
        for rec in log.itertuples():
            if rec.request_id in sent:
                assert rec.request == {"instances": sent[rec.request_id][0]}
                assert rec.response["predictions"] == sent[rec.request_id][1]
                assert rec.status == 200 and rec.version == 1 and rec.method == "predict"
        assert (
            log.iloc[-1]["status"] == 400 and "missing column" in log.iloc[-1]["response"]["error"]
        )
        assert dep.logs(since=time.time() + 60).empty
        assert len(dep.logs(limit=5)) == 5
        cli = _cli("--json", "logs", "audited", "--limit", "3")
        assert [r["request_id"] for r in json.loads(cli)] == ["audit-28", "audit-29", "audit-bad"]
        table = _cli("drift", "audited")
        assert "feature" in table and "prediction" in table and "accuracy" in table

        # Kill the replica: Serve replaces it, the log keeps what it had.
        replica = _ray.app_details("audited").replicas[0]
        ray.kill(ray.get_actor(replica.actor_name, namespace="serve"), no_restart=True)
        wait_for(lambda: _answers(dep), 60, "the replacement replica")
        assert len(dep.logs(since=started)) >= 31
    finally:
        dep.delete()


def _cli(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "jupyter_deploy.cli", *args],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _answers(dep: Any) -> bool:
    try:
        return dep.predict(_data(4, 1)[0]).shape == (1,)
    except Exception:
        return False


def test_a_dead_payload_sink_fails_no_request(cluster: Any, drift_model: Any) -> None:
    import ray

    from jupyter_deploy.monitoring import payload_log

    model, train = drift_model
    dep = jd.deploy(model, name="sinkless", sample=train, progress=False)
    try:
        ray.kill(payload_log.handle(create=False))  # the sink is gone while traffic flows
        x = _data(5, 200)[0]
        ids = _send(dep, x, rows=1)  # 200 requests: every one answered
        assert len(ids) == 200
        later = time.time()
        _send(dep, x.iloc[:20], rows=1)  # the replica finds the recreated log again

        def logged() -> int:
            return len(dep.logs(since=later))

        wait_for(lambda: logged() >= 1, 30, "records after the sink came back")
    finally:
        dep.delete()
