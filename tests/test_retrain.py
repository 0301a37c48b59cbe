"""The retraining loop: logged inputs + feedback -> candidate -> gate -> canary.

End to end through the CLI (which runs notebooks/retrain.ipynb with papermill) on a real
cluster, after a stream of shifted, labelled traffic; and its parts in-process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import wait_for

from jupyter_deploy.errors import ParameterError
from jupyter_deploy.monitoring.training import training_frame
from jupyter_deploy.pipelines.retrain import RetrainParams, parse_trigger, parse_window

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "retrain.ipynb"
CLI = str(Path(sys.executable).parent / "jupyter-deploy")
TRAIN = """
from sklearn.linear_model import LogisticRegression

def train(data):
    return LogisticRegression().fit(data[["a", "b"]], data["label"])
"""


def test_parameters_windows_and_triggers(tmp_path: Path) -> None:
    assert (
        parse_window("90m") == 5400 and parse_window(3600) == 3600 and parse_window("2d") == 172800
    )
    assert parse_trigger("accuracy<0.9") == ("accuracy", "<", 0.9)
    assert parse_trigger("drift") == ("drift", None, None)
    with pytest.raises(ParameterError, match="trigger must be"):
        parse_trigger("sometimes")
    script = tmp_path / "t.py"
    script.write_text(TRAIN)
    with pytest.raises(ParameterError, match="holdout_share"):
        RetrainParams("m", str(script), holdout_share=1.5)
    with pytest.raises(ParameterError, match="train must be"):
        RetrainParams("m", str(tmp_path / "missing.py"))


def test_training_rows_join_labels_by_request_id() -> None:
    rec = {"status": 200, "version": 1, "latency_ms": 1, "rows": 2}
    records = [
        {**rec, "time": 10.0, "request_id": "r1", "method": "predict",
         "request": '{"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]}'},
        {**rec, "time": 11.0, "request_id": "r2", "method": "predict",
         "request": '{"instances": [[5, 6]]}'},
        {**rec, "time": 12.0, "request_id": "r3", "method": "predict",
         "request": '{"instances": [[7, 8]]}'},  # never labelled
        {**rec, "time": 13.0, "request_id": "f1", "method": "feedback",
         "request": '{"feedback": [{"request_id": "r1", "label": [0, 1]}]}'},
        {**rec, "time": 14.0, "request_id": "f2", "method": "feedback",
         "request": '{"request_id": "r2", "label": 1}'},
    ]  # fmt: skip
    frame = training_frame(records, ["a", "b"])
    assert frame[["a", "b", "label"]].values.tolist() == [[1, 2, 0], [3, 4, 1], [5, 6, 1]]
    assert list(frame.columns) == ["a", "b", "label", "time", "version", "request_id"]
    assert list(training_frame(records, ["a", "b"], until=11.0)["request_id"]) == ["r1", "r1"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=600, cwd=cwd,
                          stdin=subprocess.DEVNULL)  # fmt: skip


@pytest.mark.cluster
def test_shifted_labelled_traffic_retrains_gates_and_canaries(cluster: Any, tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import jupyter_deploy as jd

    rng = np.random.default_rng(0)
    old = pd.DataFrame({"a": rng.normal(0, 1, 300), "b": rng.normal(0, 1, 300)})
    v1 = LogisticRegression().fit(old, (old["a"] + old["b"] > 0).astype(int))
    dep = jd.deploy(v1, name="retrained", sample=old, progress=False)
    try:
        # The world moved: a is 3 higher, and the label's boundary moved with it.
        new = pd.DataFrame({"a": rng.normal(3, 1, 200), "b": rng.normal(0, 1, 200)})
        truth = ((new["a"] - 3) + new["b"] > 0).astype(int)
        for start in range(0, 200, 10):
            dep.predict(new.iloc[start : start + 10])
            dep.feedback(dep.last_request_id, truth.iloc[start : start + 10].tolist())
        wait_for(lambda: len(dep.training_data()) == 200, 30, "200 labelled rows in the log")
        rows = dep.training_data()
        assert rows["label"].tolist() == truth.tolist() and set(rows["version"]) == {1}
        (tmp_path / "train.py").write_text(TRAIN)

        # Trigger not met: exit 0, one line, nothing deployed.
        base = ["retrain", "retrained", "--notebook", str(NOTEBOOK), "-p", "train", "train.py"]
        done = _cli(*base, "--trigger", "accuracy<0.01", "--window", "10m", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("not needed: accuracy 0.")
        assert [v["version"] for v in dep.refresh().versions()] == [1]

        # Drift: retrain on the logged rows, gate on the newest held out, canary at 10 %.
        wait_for(lambda: any(f["drifted"] for f in dep.drift(600)["features"]), 30, "drift")
        done = _cli(*base, "--trigger", "drift", "--window", "10m", "-p", "threshold", "0.8",
                    "--output", str(tmp_path / "record.ipynb"), cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "decision: deploy" in done.stdout and "drift in a" in done.stdout
        traffic = dep.refresh().traffic()
        assert traffic["live"] == 1 and traffic["weights"] == {1: 0.9, 2: 0.1}
        assert traffic["canary"]["version"] == 2 and traffic["canary"]["baseline"] == 1
        assert (tmp_path / "record.ipynb").exists()
    finally:
        jd.undeploy("retrained")


def test_ci_template_runs_the_retrain_notebook_hourly_with_its_parameters() -> None:
    import shlex

    import papermill as pm
    import yaml

    from jupyter_deploy.cli import parser

    root = NOTEBOOK.parent.parent
    workflow = yaml.safe_load((root / "examples" / "ci" / "retrain.yml").read_text())
    assert workflow[True]["schedule"][0]["cron"] == "17 * * * *"  # YAML reads `on` as True
    steps = workflow["jobs"]["retrain"]["steps"]
    (script,) = [s["run"] for s in steps if "jupyter-deploy retrain" in s.get("run", "")]
    args = parser().parse_args(shlex.split(script.replace("\\\n", " "))[1:])
    assert args.command == "retrain" and args.notebook == "notebooks/retrain.ipynb"
    params = dict(args.parameter)
    assert set(params) <= set(pm.inspect_notebook(str(root / args.notebook)))
    assert (root / params["train"]).is_file() and args.trigger == "drift"
