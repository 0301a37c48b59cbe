"""Quality gate without a cluster: the decision, parameter checks, loading candidates."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import joblib
import nbformat
import numpy as np
import pandas as pd
import pytest

from jupyter_deploy.errors import GateFailedError, ParameterError
from jupyter_deploy.pipelines.candidate import load_candidate, load_holdout
from jupyter_deploy.pipelines.gate import GateParams, GateResult, decide
from jupyter_deploy.pipelines.runner import parse_value, run

ROOT = Path(__file__).parent.parent
TRAIN_WINE = ROOT / "examples" / "train_wine.py"


@pytest.fixture(scope="module")
def wine_csv(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("gate") / "wine_holdout.csv"
    runpy.run_path(str(TRAIN_WINE))["write_holdout"](str(path))
    return str(path)


def _params(wine_csv: str, **kw: Any) -> GateParams:
    return GateParams(**{"name": "wine", "model": str(TRAIN_WINE), "data": wine_csv, **kw})


def test_decide_threshold_and_regression() -> None:
    assert decide("accuracy", 0.95, None, 0.9, 0.0) == []
    assert decide("accuracy", 0.95, 0.96, 0.9, 0.02) == []  # within the allowed regression
    (reason,) = decide("accuracy", 0.85, None, 0.9, 0.0)
    assert reason == "accuracy 0.8500 is below the threshold 0.9"
    (reason,) = decide("accuracy", 0.93, 0.97, 0.9, 0.02)
    assert "worse than the live version's 0.9700 by more than 0.02" in reason
    assert len(decide("accuracy", 0.5, 0.97, 0.9, 0.0)) == 2
    # Error metrics: lower is better, the threshold is a ceiling.
    assert decide("rmse", 1.0, 1.05, 1.2, 0.0) == []
    (reason,) = decide("rmse", 1.3, None, 1.2, 0.0)
    assert reason == "rmse 1.3000 is above the threshold 1.2"
    assert decide("mae", 1.1, 1.0, None, 0.05) != [] and decide("mae", 1.04, 1.0, None, 0.05) == []


def test_failed_result_raises_one_clear_line() -> None:
    result = GateResult("wine", "accuracy", 45, 0.4, 0.97, 3, 0.9, 0.0, False,
                        decide("accuracy", 0.4, 0.97, 0.9, 0.0))  # fmt: skip
    with pytest.raises(GateFailedError) as info:
        result.enforce()
    message = str(info.value)
    assert "\n" not in message and message.endswith("live v3 keeps serving.")
    assert "below the threshold 0.9" in message and result.decision == "reject"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"metric": "auc"}, "unknown metric 'auc'; use one of accuracy"),
        ({"threshold": "high"}, "threshold must be a number, got 'high'"),
        ({"threshold": 1.5}, "threshold for accuracy must be between 0 and 1, got 1.5"),
        ({"max_regression": -0.1}, "max_regression must be >= 0"),
        ({"name": "Bad Name"}, "Invalid deployment name 'Bad Name'"),
        ({"min_replicas": 3, "max_replicas": 2}, "max_replicas (2) must be >= 1 and >= min"),
        ({"runtime": "tensorrt"}, "Unknown runtime 'tensorrt': use 'python' or 'onnx'"),
        ({"model": "nope.pkl"}, "model file nope.pkl does not exist"),
        ({"model": "nosuch:tag"}, "unknown model 'nosuch:tag': not a .py/.ipynb/.pkl/.joblib"),
        ({"data": "missing.csv"}, "data file 'missing.csv' does not exist"),
        ({"target": "quality"}, "has no target column 'quality'; columns: alcohol, malic_acid"),
    ],
)
def test_bad_parameters_fail_with_one_line(wine_csv: str, change: dict[str, Any],
                                           expected: str) -> None:  # fmt: skip
    with pytest.raises(ParameterError) as info:
        _params(wine_csv, **change)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_parameters_are_normalised(wine_csv: str) -> None:
    p = _params(wine_csv, threshold="0.9", min_replicas=1.0, max_replicas="3")
    assert (p.threshold, p.min_replicas, p.max_replicas) == (0.9, 1, 3)
    assert _params(wine_csv, threshold=None).threshold is None
    assert _params(wine_csv, metric="rmse", threshold=0.4).threshold == 0.4


def test_cli_values_parse_like_papermill() -> None:
    assert [parse_value(v) for v in ["0.9", "2", "True", "none", "churn", "churn:v1"]] == [
        0.9, 2, True, None, "churn", "churn:v1"]  # fmt: skip


def test_candidates_from_script_notebook_and_pickle(wine_csv: str, tmp_path: Path) -> None:
    holdout = load_holdout(wine_csv, "target")
    script = load_candidate(str(TRAIN_WINE))
    assert script.kind == "script" and len(holdout.x) == 45
    expected = script.model.predict(holdout.x)
    assert (expected == holdout.y).mean() > 0.9

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("a training notebook"),
        nbformat.v4.new_code_cell(TRAIN_WINE.read_text().split('if __name__')[0]),
    ])  # fmt: skip
    nbformat.write(nb, tmp_path / "train.ipynb")
    from_nb = load_candidate(str(tmp_path / "train.ipynb"))
    assert from_nb.kind == "notebook"
    assert (from_nb.model.predict(holdout.x) == expected).all()

    joblib.dump(script.model, tmp_path / "model.joblib")
    pd.to_pickle(script.model, tmp_path / "model.pkl")
    for name in ("model.joblib", "model.pkl"):
        loaded = load_candidate(str(tmp_path / name))
        assert loaded.kind == "pickle" and (loaded.model.predict(holdout.x) == expected).all()

    with pytest.raises(ParameterError, match=r"defines no variable 'clf'\. Variables with "
                                             r"predict: model\."):  # fmt: skip
        load_candidate(str(TRAIN_WINE), "clf")


def test_candidate_from_bento_and_model_tag(wine_csv: str) -> None:
    from jupyter_deploy.build.capture import capture
    from jupyter_deploy.build.packaging import build_bento
    from jupyter_deploy.spec import DeploymentSpec

    holdout = load_holdout(wine_csv, "target")
    model = load_candidate(str(TRAIN_WINE)).model
    bento = build_bento(capture(model, sample=holdout.x), DeploymentSpec(name="gate-tag"))
    for tag, kind in ((bento.tag, "bento"), (bento.model_tag, "model")):
        loaded = load_candidate(tag)
        assert loaded.kind == kind
        assert (loaded.model.predict(holdout.x) == model.predict(holdout.x)).all()
    # A GateParams naming the tag checks it against the store, not the file system.
    assert _params(wine_csv, model=bento.tag).model == bento.tag


def test_run_refuses_unknown_parameters_before_starting_a_kernel() -> None:
    with pytest.raises(ParameterError, match="has no parameter 'thresold'; its parameters: name"):
        run(str(ROOT / "notebooks" / "deploy.ipynb"), None, {"thresold": 0.9})
    with pytest.raises(ParameterError, match=r"notebook nope\.ipynb does not exist"):
        run("nope.ipynb", None, {})


def test_metrics_on_regression(tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    x, y = load_diabetes(return_X_y=True, as_frame=True)
    x.assign(target=y).to_csv(tmp_path / "d.csv", index=False)
    joblib.dump(Ridge().fit(x, y), tmp_path / "ridge.joblib")
    holdout = load_holdout(str(tmp_path / "d.csv"), "target")
    model = load_candidate(str(tmp_path / "ridge.joblib")).model
    from jupyter_deploy.pipelines.gate import METRICS

    pred = model.predict(holdout.x)
    rmse = METRICS["rmse"].compute(holdout.y, pred)
    assert rmse == pytest.approx(float(np.sqrt(((pred - holdout.y) ** 2).mean())))
    assert not METRICS["rmse"].higher_is_better and METRICS["r2"].compute(holdout.y, pred) > 0.3


def test_ci_template_runs_the_deploy_notebook_with_its_parameters() -> None:
    import shlex

    import papermill as pm
    import yaml

    from jupyter_deploy.cli import parser

    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "deploy.yml").read_text())
    steps = workflow["jobs"]["deploy"]["steps"]
    (script,) = [s["run"] for s in steps if "jupyter-deploy run" in s.get("run", "")]
    args = parser().parse_args(shlex.split(script.replace("\\\n", " "))[1:])
    assert args.command == "run" and args.notebook == "notebooks/deploy.ipynb"
    params = dict(args.parameter)
    assert set(params) <= set(pm.inspect_notebook(str(ROOT / args.notebook)))
    assert {"name", "model", "data", "threshold"} <= set(params)
    assert (ROOT / params["model"]).is_file()
    assert "RAY_ADDRESS" in workflow["jobs"]["deploy"]["env"]
