"""Explainers on real scikit-learn models, in-process: additivity, columns, time bound."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import people

from jupyter_deploy._bento.runtime import ModelRuntime
from jupyter_deploy.build.capture import infer_schema
from jupyter_deploy.errors import ExplainTimeout, ExplainUnavailable
from jupyter_deploy.explain.background import summarise
from jupyter_deploy.explain.explainer import Explainer

TOL = 1e-6


def _people(n: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    return people(n, seed=0)


def _explainer(model: Any, x: pd.DataFrame, background: bool = True) -> tuple[Explainer, Any]:
    schema = infer_schema(model, x, allow_nan=False, label="m")
    runtime = ModelRuntime(model, schema)
    summary = summarise(x) if background else None
    rows = x.head(7).to_dict(orient="records")
    return Explainer.build(model, schema.names, runtime.to_model_input, summary), (
        runtime.to_model_input(rows)
    )


def _additive(e: Any) -> float:
    sums = np.asarray(e.base_values) + np.asarray([sum(c.values()) for c in e.contributions])
    return float(np.max(np.abs(sums - np.asarray(e.outputs))))


def _mixed_pipeline(final: Any) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pre = ColumnTransformer([("num", StandardScaler(), ["age", "income"]),
                             ("cat", OneHotEncoder(), ["sex", "region"])])  # fmt: skip
    return make_pipeline(pre, final)


def test_forest_is_exact_in_probability() -> None:
    from sklearn.ensemble import RandomForestClassifier

    x, y = _people()
    model = _mixed_pipeline(RandomForestClassifier(30, random_state=0)).fit(x, y)
    explainer, xin = _explainer(model, x)
    e = explainer.explain(xin, time.monotonic() + 60)
    assert e.method == "tree" and e.output.startswith("probability")
    assert _additive(e) < TOL
    proba = model.predict_proba(xin)
    picked = proba[np.arange(len(xin)), [list(model.classes_).index(p) for p in e.predictions]]
    np.testing.assert_allclose(e.outputs, picked, atol=TOL)
    assert set(e.contributions[0]) == {"age", "income", "sex", "region"}


def test_linear_pipeline_sums_one_hot_parts_per_column() -> None:
    from sklearn.linear_model import LogisticRegression

    x, y = _people()
    model = _mixed_pipeline(LogisticRegression(max_iter=500)).fit(x, y)
    explainer, xin = _explainer(model, x)
    e = explainer.explain(xin, time.monotonic() + 60)
    assert e.method == "linear" and e.output.startswith("margin")
    assert _additive(e) < TOL
    # The closed form by hand: w . (z - mean) of region's three one-hot parts, summed.
    pre, lr = model[:-1], model[-1]
    z = pre.transform(xin)
    zbg = pre.transform(explainer.background)
    mean = np.average(zbg, axis=0, weights=explainer.weights)
    names = list(pre.get_feature_names_out())
    parts = [i for i, n in enumerate(names) if n.startswith("cat__region_")]
    sign = 1 if e.predictions[0] == lr.classes_[1] else -1
    by_hand = sign * float((lr.coef_[0, parts] * (z[0, parts] - mean[parts])).sum())
    assert e.contributions[0]["region"] == pytest.approx(by_hand, abs=TOL)
    margin = model.decision_function(xin)
    np.testing.assert_allclose(np.abs(e.outputs), np.abs(margin), atol=TOL)


@pytest.mark.parametrize("kind", ["boosting", "xgboost", "lightgbm", "ridge", "multiclass"])
def test_exact_models_add_up(kind: str) -> None:
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression, Ridge

    x, y = _people()
    xn = x[["age", "income"]]
    if kind == "boosting":
        model = GradientBoostingClassifier(n_estimators=20).fit(xn, y)
    elif kind == "xgboost":
        from xgboost import XGBClassifier

        model = XGBClassifier(n_estimators=200).fit(xn, y)
    elif kind == "lightgbm":
        from lightgbm import LGBMClassifier

        model = LGBMClassifier(n_estimators=20, verbose=-1).fit(xn, y)
    elif kind == "ridge":
        model = Ridge().fit(xn, xn["income"] * 2 + xn["age"])
    else:
        model = LogisticRegression(max_iter=500).fit(xn, x["region"])
    explainer, xin = _explainer(model, xn)
    e = explainer.explain(xin, time.monotonic() + 60)
    assert e.method == ("linear" if kind in ("ridge", "multiclass") else "tree")
    # XGBoost sums its trees in float32: additive within that rounding, not 1e-6.
    assert _additive(e) < (1e-5 if kind == "xgboost" else TOL)


def test_mixing_steps_fall_back_to_sampling_on_input_columns() -> None:
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    x, y = _people()
    xn = x[["age", "income"]]
    model = make_pipeline(PCA(2), LogisticRegression()).fit(xn, y)
    explainer, xin = _explainer(model, xn)
    e = explainer.explain(xin, time.monotonic() + 60)
    assert e.method == "permutation" and set(e.contributions[0]) == {"age", "income"}
    assert _additive(e) < TOL  # orderings telescope: exact whatever the sample


def test_sampling_gives_up_at_its_deadline_and_needs_a_background() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    x, y = _people()
    xn = x[["age", "income"]]
    model = KNeighborsClassifier().fit(xn, y)
    explainer, xin = _explainer(model, xn)
    with pytest.raises(ExplainTimeout, match="explain_timeout_s"):
        explainer.explain(xin, time.monotonic() - 1)
    bare, xin = _explainer(model, xn, background=False)
    with pytest.raises(ExplainUnavailable, match="sample="):
        bare.explain(xin, time.monotonic() + 60)


def test_background_is_a_weighted_summary() -> None:
    x, _ = _people()
    summary = summarise(x)
    assert len(summary["rows"]) == 10 and sum(summary["weights"]) == len(x)
    assert all(r[2] in ("F", "M") and isinstance(r[0], int) for r in summary["rows"])
