"""``/explain`` on a real endpoint: exact contributions per input column, auth, log, bound."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import cloudpickle
import httpx
import numpy as np
import pytest
from conftest import people as people_of
from conftest import wait_for

import jupyter_deploy as jd
from jupyter_deploy.errors import PredictionError

pytestmark = pytest.mark.cluster
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def people(n: int = 300) -> tuple[Any, Any]:
    return people_of(n, seed=1)


class SlowOnReplica:
    """A classifier that takes 0.3 s per call in a replica (instant in the kernel)."""

    def __init__(self, model: Any) -> None:
        self.model, self.pid, self.classes_ = model, os.getpid(), model.classes_

    def _wait(self) -> None:
        if os.getpid() != self.pid:
            time.sleep(0.3)

    def predict(self, x: Any) -> Any:
        self._wait()
        return self.model.predict(x)

    def predict_proba(self, x: Any) -> Any:
        self._wait()
        return self.model.predict_proba(x)


def test_forest_pipeline_explained_per_input_column_under_auth(cluster: Any) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    x, y = people()
    pre = ColumnTransformer([("cat", OneHotEncoder(), ["sex", "region"])], remainder="passthrough")
    model = make_pipeline(pre, RandomForestClassifier(20, random_state=0)).fit(x, y)
    dep = jd.deploy(model, name="explained", sample=x, progress=False)
    try:
        rows = x.head(5)
        frame = dep.explain(rows)
        assert list(frame.columns) == ["age", "income", "sex", "region", "base_value", "output",
                                       "prediction"]  # fmt: skip
        assert frame.attrs["method"] == "tree"
        assert frame.attrs["output"] == "probability of the predicted class"
        sums = frame["base_value"] + frame[["age", "income", "sex", "region"]].sum(axis=1)
        proba = model.predict_proba(rows)
        picked = proba[np.arange(5), [list(model.classes_).index(p) for p in frame["prediction"]]]
        assert np.max(np.abs(sums - picked)) < 1e-6
        assert list(frame["prediction"]) == list(model.predict(rows))
        whole = dep.explain(x)  # 300 rows: explained in chunks of 256 rows, joined in order
        assert list(whole["prediction"]) == list(model.predict(x))

        url = f"{dep.url}/explain"
        body = {"instances": rows.head(1).to_dict(orient="records")}
        assert httpx.post(url, json=body, timeout=30).status_code == 401
        wrong = httpx.post(url, json={"instances": [{"age": 1}]}, timeout=30,
                           headers={"Authorization": f"Bearer {dep.token}"})  # fmt: skip
        assert wrong.status_code == 400 and "missing column" in wrong.json()["error"]
        assert httpx.get(url, headers={"Authorization": f"Bearer {dep.token}"}).status_code == 405

        rid = frame.attrs["request_id"]
        logged = wait_for(lambda: _logged(dep, rid), 30, "the explanation in the payload log")
        assert logged["response"]["explanations"][0].keys() == {"age", "income", "sex", "region"}
        # The explainer and what its build imported (shap, numba) are frozen out of the
        # GC's scans, like the rest of the replica: a few thousand objects are left.
        frozen, scanned = _replica_gc("explained")
        assert frozen > 300_000 and scanned < 20_000, (frozen, scanned)
    finally:
        jd.undeploy("explained")


def _replica_gc(app: str) -> tuple[int, int]:
    """The replica's frozen and scanned (tracked, not frozen) object counts."""
    import ray

    def counts(_actor: Any) -> tuple[int, int]:
        import gc

        return gc.get_freeze_count(), len(gc.get_objects())

    (actor,) = [a for a in ray.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith(f"SERVE_REPLICA::{app}#")]  # fmt: skip
    return ray.get(ray.get_actor(actor["name"], actor["namespace"]).__ray_call__.remote(counts))


def _logged(dep: Any, rid: str) -> Any:
    log = dep.logs()
    if not len(log):
        return None
    hits = log[(log["request_id"] == rid) & (log["method"] == "explain")]
    return hits.iloc[0].to_dict() if len(hits) else None


def test_a_slow_model_agnostic_explanation_answers_503_with_the_reason(cluster: Any) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    x, y = people()
    xn = x[["age", "income"]]
    model = SlowOnReplica(KNeighborsClassifier().fit(xn, y))
    dep = jd.deploy(model, name="slowexplain", sample=xn, explain_timeout_s=0.5, progress=False)
    try:
        with pytest.raises(PredictionError, match="explain_timeout_s") as err:
            dep.explain(xn.head(1))
        assert err.value.status == 503
        assert len(dep.predict(xn.head(1))) == 1  # the predict route is not held up
    finally:
        jd.undeploy("slowexplain")
