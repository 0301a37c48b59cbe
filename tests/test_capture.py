"""Capturing a model from the kernel: checks, schema inference, environment pins."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from jupyter_deploy.build.capture import capture, deployable_variables, resolve
from jupyter_deploy.build.environment import pinned_requirements
from jupyter_deploy.errors import InvalidModelError, UnknownVariableError


def test_dataframe_sample_gives_named_typed_columns(iris_pipe: Any, iris: tuple[Any, Any]) -> None:
    cap = capture(iris_pipe, sample=iris[0], variable="pipe")
    assert cap.schema.frame is True
    assert cap.schema.names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert {c.kind for c in cap.schema.columns} == {"float"}
    assert cap.methods == ["predict", "predict_proba"]
    assert cap.framework == "sklearn"
    assert "sklearn" in cap.modules


def test_schema_from_feature_names_and_width(iris_pipe: Any, iris: tuple[Any, Any]) -> None:
    from sklearn.linear_model import LinearRegression

    assert capture(iris_pipe).schema.source == "feature_names_in_"
    arr = LinearRegression().fit(np.eye(3), [1, 2, 3])
    schema = capture(arr).schema
    assert schema.source == "n_features_in_" and schema.names == ["x0", "x1", "x2"]
    assert schema.frame is False


def test_unfitted_model_is_refused() -> None:
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(InvalidModelError, match=r"not fitted yet: call clf.fit"):
        capture(LogisticRegression(), variable="clf")


def test_object_without_predict_is_refused() -> None:
    with pytest.raises(InvalidModelError, match="has no predict method"):
        capture({"weights": [1, 2]}, variable="weights")


def test_sample_of_wrong_width_is_refused(iris_pipe: Any) -> None:
    with pytest.raises(InvalidModelError, match=r"3 columns but .* fitted on 4"):
        capture(iris_pipe, sample=np.zeros((5, 3)))


def test_unknown_variable_lists_deployable_ones(iris_pipe: Any) -> None:
    ns = {"pipe": iris_pipe, "data": [1, 2], "_hidden": iris_pipe}
    assert deployable_variables(ns) == ["pipe"]
    with pytest.raises(UnknownVariableError, match=r"No variable named 'model'.*pipe"):
        resolve("model", ns)
    assert resolve("pipe", ns) == (iris_pipe, "pipe")


def test_plain_predict_object_needs_a_sample() -> None:
    class Doubler:
        def predict(self, x: Any) -> Any:
            return np.asarray(x)[:, 0] * 2

    with pytest.raises(InvalidModelError, match="pass sample="):
        capture(Doubler())
    cap = capture(Doubler(), sample=np.ones((4, 2)))
    assert cap.schema.names == ["x0", "x1"] and cap.methods == ["predict"]


def test_requirements_pin_the_kernel_versions(iris_pipe: Any, iris: tuple[Any, Any]) -> None:
    from importlib.metadata import version

    pins = pinned_requirements(capture(iris_pipe, sample=iris[0]).modules)
    assert f"scikit-learn=={version('scikit-learn')}" in pins
    assert f"numpy=={version('numpy')}" in pins
    assert any(p.startswith("scipy==") for p in pins)
    assert not any(p.startswith("jupyter_deploy") or p.startswith("jupyter-deploy") for p in pins)
