"""ONNX export: parity per model family, refusals, the standalone script, the CLI.

Bentos are built in the session's own BentoML store without a cluster (fast); one test
exports a real deployment through the handle and the CLI on the shared cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone

from jupyter_deploy.build.capture import capture
from jupyter_deploy.build.packaging import build_bento
from jupyter_deploy.errors import ExportError
from jupyter_deploy.export import export
from jupyter_deploy.spec import DeploymentSpec


def _bento(model: Any, x: Any, name: str) -> str:
    return build_bento(capture(model, sample=x), DeploymentSpec(name=name)).tag


@pytest.fixture(scope="module")
def churn() -> tuple[pd.DataFrame, pd.Series]:
    """Iris with awkward column names and a string column, as a churn table would have."""
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = ["sepal length", "sepal-width", "petal_length", "petal.width"]
    plan = np.where(y == 0, "basic", np.where(y == 1, "plus", "pro")).astype(object)
    plan[::7] = "trial"  # not a copy of the label: the encoder's categories matter
    x["calls"] = np.arange(len(x)) % 5  # an integer column
    x["plan"] = plan
    return x, y


def _models(churn: tuple[pd.DataFrame, pd.Series]) -> dict[str, tuple[Any, Any]]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    x, y = churn
    num = x.drop(columns="plan")
    encode = ColumnTransformer(
        [("num", StandardScaler(), list(num.columns)),
         ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])]
    )  # fmt: skip
    return {
        "logistic": (LogisticRegression(max_iter=500).fit(num, y), num),
        "linear": (LinearRegression().fit(num.iloc[:, :3], num.iloc[:, 3]), num.iloc[:, :3]),
        "tree": (DecisionTreeClassifier(random_state=0).fit(num, y), num),
        "forest": (RandomForestClassifier(20, random_state=0).fit(num, y), num),
        "boosting": (GradientBoostingClassifier(n_estimators=20, random_state=0).fit(num, y), num),
        "pipeline": (make_pipeline(encode, LogisticRegression(max_iter=500)).fit(x, y), x),
        # float32 scaling in the graph moved rows across thresholds (0.1 in probability)
        "scaled-forest": (make_pipeline(clone(encode), RandomForestClassifier(
            20, random_state=0)).fit(x, y), x),
        "mlp": (make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=2000,
                                                             random_state=0)).fit(num, y), num),
    }  # fmt: skip


@pytest.fixture(scope="module")
def bentos(churn: tuple[pd.DataFrame, pd.Series]) -> dict[str, tuple[str, Any, Any]]:
    return {k: (_bento(m, x, f"onnx-{k}"), m, x) for k, (m, x) in _models(churn).items()}


@pytest.mark.parametrize(
    "kind",
    ["logistic", "linear", "tree", "forest", "boosting", "pipeline", "scaled-forest", "mlp"],
)
@pytest.mark.parametrize("rows", ["profile", "sample"])
def test_graph_answers_like_the_model(bentos: Any, kind: str, rows: str, tmp_path: Path) -> None:
    tag, _, x = bentos[kind]
    target = tmp_path / f"{kind}.onnx"
    # The training rows themselves sit on float32 rounding boundaries of tree thresholds.
    report = export(tag, "onnx", target, sample=x if rows == "sample" else None)
    assert report.rows_source == ("sample" if rows == "sample" else "reference profile")
    assert report.rows_checked == (len(x) if rows == "sample" else 1000)
    assert report.graph.label_agreement >= 0.999
    if report.task == "classification":
        assert report.graph.max_difference is not None
        assert report.graph.max_difference <= 1e-4
    assert report.precision == "double"
    assert report.graph.file_bytes == target.stat().st_size
    assert [lat.rows for lat in report.graph.latency] == [1, 1000]
    assert list(report.inputs) == list(x.columns)
    assert all(name.isidentifier() for name in report.inputs.values())
    assert report.opset["ai.onnx"] <= 18
    written = json.loads((tmp_path / f"{kind}.parity.json").read_text())
    assert written == json.loads(json.dumps(report.to_dict()))
    inputs = json.loads((tmp_path / f"{kind}.inputs.json").read_text())
    assert [i["column"] for i in inputs["inputs"]] == list(x.columns)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{kind}.onnx", f"{kind}.inputs.json", f"{kind}.parity.json", f"{kind}.README.md",
         f"{kind}_predict.py"]
    )  # fmt: skip


BOOSTERS = [("xgboost", "XGBClassifier"), ("xgboost", "XGBRegressor"),
            ("lightgbm", "LGBMClassifier"), ("lightgbm", "LGBMRegressor")]  # fmt: skip


@pytest.mark.parametrize(("module", "name"), BOOSTERS)
def test_boosters_through_onnxmltools(churn: Any, module: str, name: str, tmp_path: Path) -> None:
    from sklearn.base import is_classifier
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    pytest.importorskip("onnxmltools")
    cls = getattr(pytest.importorskip(module), name)
    x, y = churn
    params = {"n_estimators": 20, "verbose": -1} if module == "lightgbm" else {"n_estimators": 20}
    booster = cls(**params)
    target = y if is_classifier(booster) else x["petal.width"]
    num = x.drop(columns=["plan", "petal.width"])
    bare = clone(booster).fit(num, target)  # trained on a DataFrame: named features
    encode = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])],
                               remainder="passthrough")  # fmt: skip
    piped = make_pipeline(encode, clone(booster)).fit(x.drop(columns="petal.width"), target)
    for i, (model, rows) in enumerate([(bare, num), (piped, x.drop(columns="petal.width"))]):
        tag = _bento(model, rows, f"onnx-{name.lower()}-{i}")
        for sample in (None, rows):
            report = export(tag, "onnx", tmp_path / f"{i}.onnx", sample=sample)
            assert report.graph.label_agreement >= 0.999
            if report.task == "classification":
                assert report.graph.max_difference is not None
                assert report.graph.max_difference <= 1e-4


def test_string_columns_are_string_tensors(bentos: Any, tmp_path: Path) -> None:
    import onnx

    tag, _, _ = bentos["pipeline"]
    report = export(tag, "onnx", tmp_path / "churn.onnx")
    assert report.inputs["sepal length"] == "sepal_length"
    graph = onnx.load(tmp_path / "churn.onnx").graph
    types = {i.name: i.type.tensor_type.elem_type for i in graph.input}
    assert types["plan"] == onnx.TensorProto.STRING
    assert types["sepal_length"] == onnx.TensorProto.DOUBLE
    assert "ZipMap" not in {n.op_type for n in graph.node}


def test_mlp_quantised_is_checked_again(bentos: Any, tmp_path: Path) -> None:
    import onnx

    tag, _, x = bentos["mlp"]
    report = export(tag, "onnx", tmp_path / "mlp-q.onnx", quantize=True, sample=x)
    assert report.quantized is not None
    assert report.quantized.label_agreement >= 0.999
    assert report.precision == "float"
    assert report.quantized.file_bytes == (tmp_path / "mlp-q.onnx").stat().st_size
    ops = {n.op_type for n in onnx.load(tmp_path / "mlp-q.onnx").graph.node}
    assert ops & {"MatMulInteger", "DynamicQuantizeLinear"}


def test_quantised_graph_that_loses_parity_is_not_written(bentos: Any, tmp_path: Path) -> None:
    # Rows drawn feature by feature from the profile sit near the MLP's class boundaries
    # more often than real rows: int8 weights flip 4 of 1,000 labels there (measured).
    with pytest.raises(ExportError, match=r"After quantisation .* agrees .* on only"):
        export(bentos["mlp"][0], "onnx", tmp_path / "mlp-q.onnx", quantize=True)
    _assert_nothing_written(tmp_path)


def _assert_nothing_written(folder: Path) -> None:
    assert list(folder.iterdir()) == []


def test_quantising_trees_or_linear_models_is_refused(bentos: Any, tmp_path: Path) -> None:
    for kind in ("forest", "logistic"):
        with pytest.raises(ExportError, match="would not change"):
            export(bentos[kind][0], "onnx", tmp_path / f"{kind}.onnx", quantize=True)
    _assert_nothing_written(tmp_path)


class NotebookModel(RegressorMixin, BaseEstimator):
    """A model class as a notebook defines it (cloudpickle ships it by value)."""

    def fit(self, x: Any, y: Any) -> NotebookModel:
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, x: Any) -> Any:
        return np.full(len(x), self.mean_)


NotebookModel.__module__ = "__main__"


def test_notebook_class_is_refused_naming_the_step(churn: Any, tmp_path: Path) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    num = churn[0].drop(columns="plan")
    model = make_pipeline(StandardScaler(), NotebookModel()).fit(num, churn[1])
    tag = _bento(model, num, "onnx-notebook")
    with pytest.raises(ExportError, match=r"Step 'notebookmodel' \(NotebookModel\).*notebook"):
        export(tag, "onnx", tmp_path / "nb.onnx")
    _assert_nothing_written(tmp_path)


def test_unsupported_estimator_is_refused(churn: Any, tmp_path: Path) -> None:
    from sklearn.kernel_ridge import KernelRidge

    num = churn[0].drop(columns="plan")
    tag = _bento(KernelRidge().fit(num, churn[1]), num, "onnx-kernel-ridge")
    with pytest.raises(ExportError) as err:
        export(tag, "onnx", tmp_path / "kr.onnx")
    assert "The model (KernelRidge)" in str(err.value)
    assert "no converter" in str(err.value)
    assert "\n" not in str(err.value)
    _assert_nothing_written(tmp_path)


def test_standalone_script_needs_neither_us_nor_sklearn(bentos: Any, tmp_path: Path) -> None:
    tag, model, x = bentos["pipeline"]
    export(tag, "onnx", tmp_path / "churn.onnx")
    rows = x.iloc[[0, 60, 120]]
    (tmp_path / "rows.json").write_text(rows.to_json(orient="records"))
    script = tmp_path / "churn_predict.py"
    # Importing either from the script fails: it proves the example runs without them.
    runner = (
        "import runpy, sys; sys.modules['sklearn'] = None; sys.modules['jupyter_deploy'] = None;"
        f" sys.argv = [{str(script)!r}, {str(tmp_path / 'rows.json')!r}];"
        f" runpy.run_path({str(script)!r}, run_name='__main__')"
    )
    done = subprocess.run([sys.executable, "-I", "-c", runner], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["label"] == model.predict(rows).tolist()
    np.testing.assert_allclose(answer["probabilities"], model.predict_proba(rows), atol=1e-6)
    readme = (tmp_path / "churn.README.md").read_text()
    assert "churn_predict.py" in readme and "| plan | plan |" in readme


def test_bento_archive(bentos: Any, tmp_path: Path) -> None:
    tag, _, _ = bentos["logistic"]
    path = export(tag, "bento", tmp_path / "logistic.bento")
    assert tarfile.is_tarfile(path)
    with tarfile.open(path) as archive:
        assert "bento.yaml" in {Path(n).name for n in archive.getnames()}
    with pytest.raises(ExportError, match="exists"):
        export(tag, "bento", path)


def test_bentos_built_in_one_process_each_serve_their_own_model(bentos: Any) -> None:
    import bentoml

    # Regression: bentoml re-used the service module cached by the first build.
    for tag, _, _ in bentos.values():
        info = bentoml.bentos.get(tag).info
        assert info.entry_service == tag.split(":")[0]
        assert str(info.services[0].models[0].tag) == str(info.models[0].tag)


@pytest.mark.slow
def test_bento_archive_serves_from_an_empty_store(bentos: Any, tmp_path: Path) -> None:
    import os

    import httpx
    from conftest import bentoml_serve

    tag, model, x = bentos["pipeline"]
    archive = export(tag, "bento", tmp_path / "churn.bento")
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "elsewhere")}  # no Bento, no model
    bentoml_cli = str(Path(sys.executable).parent / "bentoml")
    subprocess.run([bentoml_cli, "import", archive], env=env, check=True, capture_output=True)
    rows = x.head(10)
    with bentoml_serve(tag, tmp_path / "serve.log", env) as url:
        answer = httpx.post(f"{url}/predict", json={"instances": json.loads(
            rows.to_json(orient="records"))}, timeout=30).json()  # fmt: skip
    assert answer["predictions"] == model.predict(rows).tolist()


def test_unknown_format_and_bad_name(bentos: Any, tmp_path: Path) -> None:
    tag, _, _ = bentos["logistic"]
    with pytest.raises(ExportError, match="Unknown export format"):
        export(tag, "pmml", tmp_path / "x.pmml")
    with pytest.raises(ExportError, match=r"\.onnx"):
        export(tag, "onnx", tmp_path / "x.bin")
    _assert_nothing_written(tmp_path)


@pytest.mark.cluster
def test_export_a_deployment_from_the_handle_and_the_cli(iris_dep: Any, iris: Any,
                                                          tmp_path: Path) -> None:  # fmt: skip
    from jupyter_deploy import cli

    report = iris_dep.export("onnx", str(tmp_path / "handle" / "iris.onnx"))
    assert report.bento_tag == iris_dep.bento_tag
    assert report.graph.label_agreement >= 0.999
    assert cli.main(["export", "iris", str(tmp_path / "cli" / "iris.onnx")]) == 0
    parity = json.loads((tmp_path / "cli" / "iris.parity.json").read_text())
    assert parity["inputs"] == report.inputs
    bento = tmp_path / "iris.bento"
    assert cli.main(["export", "iris", str(bento), "--format", "bento"]) == 0
    assert tarfile.is_tarfile(bento)
    assert cli.main(["export", "iris", str(tmp_path / "v.onnx"), "--version", "99"]) == 1
    assert not (tmp_path / "v.onnx").exists()
