"""XGBoost and LightGBM, scikit-learn API and native Boosters: native files, ONNX, serving.

Bentos are built without a cluster for the file and ONNX checks; two deployments on the
session's cluster cover serving (python and onnx runtimes), batch and bentoml serve.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from conftest import bentoml_serve

import jupyter_deploy as jd
from jupyter_deploy.build.capture import capture
from jupyter_deploy.build.packaging import build_bento
from jupyter_deploy.export import export
from jupyter_deploy.spec import DeploymentSpec


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(300, 4)), columns=["age", "calls", "spend", "tenure"])
    y = pd.Series((x.age + x.spend > 0).astype(int) + (x.tenure > 1).astype(int))
    return x, y


def _models(x: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    binary = (y > 0).astype(int)
    multi = {"objective": "multi:softprob", "num_class": 3, "max_depth": 3}
    return {
        "xgb-classifier": xgb.XGBClassifier(n_estimators=8, max_depth=3).fit(x, y),
        "lgbm-regressor": lgb.LGBMRegressor(n_estimators=8, verbose=-1).fit(x, x.spend * 2),
        "xgb-booster": xgb.train(multi, xgb.DMatrix(x, y), 8),
        "lgbm-booster": lgb.train(
            {"objective": "binary", "verbose": -1}, lgb.Dataset(x, binary), 8
        ),
    }


def _native(model: Any, rows: pd.DataFrame) -> np.ndarray:
    """What the model itself predicts (a Booster from XGBoost wants a DMatrix)."""
    return np.asarray(model.predict(xgb.DMatrix(rows) if isinstance(model, xgb.Booster)
                                    else rows))  # fmt: skip


@pytest.mark.parametrize("kind", ["xgb-classifier", "lgbm-regressor", "xgb-booster",
                                  "lgbm-booster"])  # fmt: skip
def test_native_file_in_the_bento_and_onnx_parity(data: Any, kind: str, tmp_path: Path) -> None:
    import bentoml

    from jupyter_deploy._bento.runtime import ModelRuntime

    x, y = data
    rows = x.head(20)
    model = _models(x, y)[kind]
    tag = build_bento(capture(model, sample=x), DeploymentSpec(name=f"b-{kind}")).tag
    model_dir = Path(bentoml.models.get(bentoml.bentos.get(tag).info.models[0].tag).path)
    serving = json.loads((model_dir / "serving.json").read_text())["native"]
    native_file = model_dir / serving["file"]
    if kind.startswith("xgb"):
        reloaded = xgb.Booster(model_file=str(native_file))
        assert np.allclose(reloaded.predict(xgb.DMatrix(rows)),
                           _native(model, rows) if kind == "xgb-booster"
                           else model.predict_proba(rows))  # fmt: skip
    else:
        reloaded = lgb.Booster(model_file=str(native_file))
        assert np.allclose(reloaded.predict(rows), _native(model, rows))
    served = ModelRuntime.from_dir(model_dir).call("predict", rows.values.tolist())
    assert np.allclose(served["predictions"], _native(model, rows))
    report = export(tag, "onnx", tmp_path / "model.onnx", sample=x)
    assert report.graph.label_agreement == 1.0
    assert report.graph.max_difference is not None and report.graph.max_difference < 1e-5


def test_a_booster_without_a_sample_gets_its_schema_from_its_features(data: Any) -> None:
    x, y = data
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(x.to_numpy(), y), 4)
    assert capture(booster).schema.names == ["x0", "x1", "x2", "x3"]
    named = lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(x, y), 4)
    cap = capture(named)
    assert cap.schema.names == list(x.columns) and cap.model_class == "lightgbm.basic.Booster"


@pytest.mark.cluster
@pytest.mark.slow
def test_boosters_serve_batch_and_run_standalone(cluster: Any, data: Any, tmp_path: Path) -> None:
    x, y = data
    models = _models(x, y)
    booster, classifier = models["lgbm-booster"], models["xgb-classifier"]
    dep = jd.deploy(booster, name="booster", sample=x, progress=False)
    rows = x.head(25)
    expected = booster.predict(rows)
    assert np.allclose(dep.predict(rows), expected)
    scored = dep.batch(x, progress=False)
    assert np.allclose(scored["prediction"], booster.predict(x)) and scored.error.isna().all()
    with bentoml_serve(dep.bento_tag, tmp_path / "serve.log") as url:
        records = json.loads(rows.to_json(orient="records"))
        answer = httpx.post(f"{url}/predict", json={"instances": records}, timeout=30).json()
    assert np.allclose(answer["predictions"], expected)

    # v2 of the same deployment, another library and runtime: switched in place.
    graph = jd.deploy(classifier, name="booster", sample=x, runtime="onnx", progress=False)
    assert graph.version == 2 and [v["runtime"] for v in graph.versions()] == ["python", "onnx"]
    assert graph.predict(rows).tolist() == classifier.predict(rows).tolist()
    assert np.allclose(graph.predict_proba(rows), classifier.predict_proba(rows), atol=1e-6)
    assert graph.batch(x, progress=False)["prediction"].tolist() == classifier.predict(x).tolist()
