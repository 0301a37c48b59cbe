"""The Bento runtime's validation: every client mistake is a 4xx naming the problem."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pytest

from jupyter_deploy._bento.runtime import (
    Column,
    InputError,
    InputSchema,
    ModelRejected,
    ModelRuntime,
    PayloadTooLarge,
)
from jupyter_deploy.build.capture import capture


@pytest.fixture(scope="module")
def runtime(iris_pipe: Any, iris: tuple[Any, Any]) -> ModelRuntime:
    cap = capture(iris_pipe, sample=iris[0])
    return ModelRuntime(cap.model, cap.schema, max_batch_rows=50)


RECORD = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def error_of(runtime: ModelRuntime, instances: Any) -> InputError:
    with pytest.raises(InputError) as info:
        runtime.call("predict", instances)
    return info.value


def test_records_and_rows_give_the_same_predictions(runtime: ModelRuntime, iris_pipe: Any,
                                                    iris: tuple[Any, Any]) -> None:  # fmt: skip
    x = iris[0].head(20)
    records = json.loads(x.to_json(orient="records"))
    rows = x.to_numpy().tolist()
    expected = iris_pipe.predict(x).tolist()
    assert runtime.call("predict", records)["predictions"] == expected
    assert runtime.call("predict", rows)["predictions"] == expected


def test_predict_proba_carries_classes(runtime: ModelRuntime) -> None:
    answer = runtime.call("predict_proba", [RECORD])
    assert answer["classes"] == [0, 1, 2]
    assert math.isclose(sum(answer["predictions"][0]), 1.0)


@pytest.mark.parametrize(
    ("instances", "status", "needle"),
    [
        ([{k: v for k, v in RECORD.items() if k != "petal_width"}], 400,
         "missing column(s) 'petal_width'"),
        ([{**RECORD, "colour": "red"}], 400, "unknown column(s) 'colour'"),
        ([{**RECORD, "sepal_length": "wide"}], 400, "'sepal_length' expects a number"),
        ([{**RECORD, "sepal_length": None}], 400, "'sepal_length' is null"),
        ([{**RECORD, "sepal_length": float("inf")}], 400, "not finite"),
        ([[1.0, 2.0, 3.0]], 400, "has 3 values, expected 4"),
        ([[1.0, 2.0, 3.0, 4.0, 5.0]], 400, "has 5 values, expected 4"),
        ([], 400, "is empty"),
        ({"a": 1}, 400, "must be a list"),
        (["row"], 400, "must be a record (object) or a row (list)"),
        ([RECORD] * 51, 413, "exceeds this deployment's limit of 50 rows"),
    ],
)  # fmt: skip
def test_bad_instances_are_client_errors(runtime: ModelRuntime, instances: Any, status: int,
                                         needle: str) -> None:  # fmt: skip
    err = error_of(runtime, instances)
    assert err.status == status
    assert needle in str(err)


def test_oversized_batch_is_payload_too_large(runtime: ModelRuntime) -> None:
    assert isinstance(error_of(runtime, [RECORD] * 51), PayloadTooLarge)


@pytest.mark.parametrize(
    ("body", "needle"),
    [(b"{not json", "malformed JSON"), (b"[1, 2]", '{"instances": [...]}'),
     (b'{"rows": []}', '{"instances": [...]}')],
)  # fmt: skip
def test_malformed_bodies(runtime: ModelRuntime, body: bytes, needle: str) -> None:
    with pytest.raises(InputError) as info:
        runtime.instances_from_body(body)
    assert needle in str(info.value)


def test_nan_allowed_only_where_the_schema_says_so() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.array([[1.0, np.nan], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0]] * 5)
    y = np.array([0, 1, 0, 1] * 5)
    model = HistGradientBoostingClassifier(max_iter=5).fit(x, y)
    cap = capture(model, sample=x)
    assert [c.nullable for c in cap.schema.columns] == [False, True]
    rt = ModelRuntime(cap.model, cap.schema)
    assert len(rt.call("predict", [[1.0, None]])["predictions"]) == 1
    assert "'x0' is null" in str(error_of(rt, [[None, 1.0]]))


def test_model_refusal_is_422_not_500() -> None:
    import pandas as pd
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.tree import DecisionTreeClassifier

    x = pd.DataFrame({"colour": ["red", "blue", "red", "green"]})
    model = make_pipeline(OneHotEncoder(), DecisionTreeClassifier()).fit(x, [0, 1, 0, 1])
    cap = capture(model, sample=x)
    rt = ModelRuntime(cap.model, cap.schema)
    assert rt.call("predict", [{"colour": "red"}])["predictions"] == [0]
    err = error_of(rt, [{"colour": "purple"}])
    assert isinstance(err, ModelRejected) and err.status == 422
    assert "purple" in str(err)


def test_integer_columns_reject_fractions() -> None:
    schema = InputSchema([Column("n", "integer", "int64")], frame=False)

    class Echo:
        def predict(self, x: Any) -> Any:
            return x[:, 0]

    rt = ModelRuntime(Echo(), schema)
    assert rt.call("predict", [[3]])["predictions"] == [3]
    assert "expects an integer" in str(error_of(rt, [[2.5]]))


@pytest.mark.parametrize(
    "instances",
    [
        [RECORD],
        [RECORD, list(RECORD.values()), {**RECORD, "petal_width": 3}],  # records, rows, an int
        [{**RECORD, "petal_width": 2**70}],  # an int no int64 holds
    ],
)
def test_column_wise_checks_build_what_the_row_checks_build(
    runtime: ModelRuntime, instances: list[Any]
) -> None:
    """The column-wise fast path (one array, one frame block) equals the per-row path."""
    fast = runtime.to_model_input(instances)
    slow = runtime._frame([runtime._row(inst, i) for i, inst in enumerate(instances)])
    assert list(fast.columns) == list(slow.columns)
    assert list(fast.dtypes) == list(slow.dtypes)
    np.testing.assert_array_equal(fast.to_numpy(), slow.to_numpy())
    assert runtime.run("predict", fast).tolist() == runtime.run("predict", slow).tolist()


@pytest.mark.parametrize(
    "instances",
    [
        [RECORD, {**RECORD, "petal_width": math.inf}, {"sepal_length": 1.0}],
        [RECORD, {"sepal_length": 1.0}, {**RECORD, "petal_width": "x"}],
        [RECORD, {**RECORD, "petal_width": None}],
        [RECORD, [1.0, 2.0]],
        [RECORD, {**RECORD, "petal_width": [1.0]}],
        [RECORD, {**RECORD, "petal_width": True}],  # a bool is no number (as the document says)
        [RECORD, {**RECORD, "petal_width": 1.5e308}],  # past the document's bound
    ],
)
def test_the_first_bad_instance_is_named_as_before(
    runtime: ModelRuntime, instances: list[Any]
) -> None:
    """A batch the fast path refuses gets the row-by-row checks' error, word for word."""
    with pytest.raises(InputError) as fast:
        runtime.to_model_input(instances)
    with pytest.raises(InputError) as slow:
        for i, inst in enumerate(instances):
            runtime._row(inst, i)
    assert str(fast.value) == str(slow.value)


# Records, a row, an int, an int no int64 holds: the fast path and the row checks.
BIG = {**RECORD, "sepal_width": 2**70}
MIXED = [RECORD, list(RECORD.values()), {**RECORD, "petal_width": 3}, BIG]


def test_a_serving_runtime_gives_a_frame_fitted_pipeline_the_matrix(
    iris_pipe: Any, iris: tuple[Any, Any]
) -> None:
    """Serving: the iris pipeline gets the checked matrix, answers as from the frame (fast
    path and row checks alike, batched too) and scikit-learn's warning that the matrix has
    no feature names is not shown."""
    cap = capture(iris_pipe, sample=iris[0])
    framed, served = ModelRuntime(cap.model, cap.schema), ModelRuntime(cap.model, cap.schema)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        served.serve_arrays()
        for batch in ([RECORD], MIXED):
            x = served.to_model_input(batch)
            assert isinstance(x, np.ndarray) and x.dtype == np.float64
            for method in ("predict", "predict_proba"):
                assert served.call(method, batch) == framed.call(method, batch)
        both = served.concat([served.to_model_input([RECORD]), served.to_model_input(MIXED)])
        assert (
            served.run("predict", both).tolist()
            == framed.call("predict", [RECORD, *MIXED])["predictions"]
        )
        assert str(error_of(served, [{**RECORD, "petal_width": "x"}])) == str(
            error_of(framed, [{**RECORD, "petal_width": "x"}])
        )
    assert not [w for w in seen if "feature names" in str(w.message)]


def test_a_model_that_reads_the_frame_by_name_keeps_the_frame(iris: tuple[Any, Any]) -> None:
    """A ColumnTransformer selecting columns by name cannot take the matrix: it keeps the
    frame (and a model fitted on an array had no frame to skip)."""
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = iris
    by_name = make_pipeline(
        make_column_transformer((StandardScaler(), ["petal_length", "petal_width"]),
                                remainder="passthrough"),
        LogisticRegression(max_iter=300),
    ).fit(x, y)  # fmt: skip
    cap = capture(by_name, sample=x)
    rt = ModelRuntime(cap.model, cap.schema)
    rt.serve_arrays()
    assert list(rt.to_model_input([RECORD]).columns) == list(x.columns)
    assert rt.call("predict", [RECORD])["predictions"] == by_name.predict(x.iloc[[0]]).tolist()

    on_array = LogisticRegression(max_iter=300).fit(x.to_numpy(), y)
    cap = capture(on_array, sample=x.to_numpy())
    rt = ModelRuntime(cap.model, cap.schema)
    rt.serve_arrays()
    assert not rt._arrays


def test_a_bento_whose_runtime_predates_serve_arrays_still_loads(
    iris_pipe: Any, iris: tuple[Any, Any]
) -> None:
    """Replicas run each Bento's own runtime: one built by an earlier release (no
    ``serve_arrays``) loads and answers with the frame, as it did."""
    from jupyter_deploy.build.packaging import build_bento, export_archive
    from jupyter_deploy.replica.loaded import LoadedVersion, local_bento
    from jupyter_deploy.spec import DeploymentSpec

    tag = build_bento(capture(iris_pipe, sample=iris[0]), DeploymentSpec(name="oldrt")).tag
    source = local_bento(tag, export_archive) / "src" / "jd_runtime.py"
    source.write_text(source.read_text().replace("def serve_arrays(", "def _not_yet("))
    loaded = LoadedVersion.load("oldrt", 1, tag, 100, export_archive)
    try:
        assert not hasattr(loaded.runtime, "serve_arrays")
        assert hasattr(loaded.runtime.to_model_input([RECORD]), "columns")
        expected = iris_pipe.predict(iris[0].iloc[[0]]).tolist()
        assert loaded.runtime.call("predict", [dict(iris[0].iloc[0])])["predictions"] == expected
    finally:
        loaded.unload()
