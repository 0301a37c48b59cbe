"""Notebooks in notebooks/ run headless through papermill in a real kernel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for

pytestmark = pytest.mark.cluster

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def _outputs(nb: Any) -> tuple[str, list[dict[str, Any]]]:
    text, data = [], []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            text.append(out.get("text", ""))
            if "data" in out:
                data.append(out["data"])
                text.append(str(out["data"].get("text/plain", "")))
    return "\n".join(text), data


def test_quickstart_deploys_queries_and_monitors(cluster: Any, tmp_path: Path) -> None:
    import papermill as pm

    import jupyter_deploy as jd

    out = tmp_path / "quickstart.out.ipynb"
    nb = pm.execute_notebook(
        str(NOTEBOOKS / "quickstart.ipynb"), str(out),
        parameters={"name": "qs-test", "requests": 20}, kernel_name="python3",
        progress_bar=False, cwd=str(tmp_path),
    )  # fmt: skip
    text, data = _outputs(nb)
    assert "predictions match the kernel's model: True" in text
    assert any("qs-test" in d.get("text/html", "") for d in data)  # the %deploy summary
    monitor = [d for d in data if "application/vnd.jupyter.widget-view+json" in d]
    assert monitor, "the monitor widget is not in the saved notebook"
    # Without a kernel, the saved notebook still shows a picture: the static HTML copy,
    # and the widget state nbclient saved, with the monitor's later updates in it.
    assert "requests since deploy" in monitor[0]["text/html"]
    assert "<svg" in monitor[0]["text/html"]
    states = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    saved = [m["state"].get("value", "") for m in states.values()]
    assert any("requests since deploy" in v for v in saved)
    counted = int(text.split("requests counted: ")[1].split(",")[0])
    assert counted >= 20 + 1  # 20 queries of 3 rows + the 45-row predict, at least
    dep = jd.get("qs-test")  # made by the notebook's kernel, seen from here
    assert dep.metrics()["total_requests"] == counted
    dep.delete()


# -- notebooks/deploy.ipynb, driven as CI would: `jupyter-deploy run ... -p key value` ------
EXECUTED = {"quickstart.ipynb", "deploy.ipynb", "retrain.ipynb"}  # retrain: test_retrain.py
CLI = str(Path(sys.executable).parent / "jupyter-deploy")

TRAIN_IRIS = """
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

X, y = load_iris(return_X_y=True, as_frame=True)
X_train, _, y_train, _ = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
model = LogisticRegression(max_iter=500).fit(X_train, y_train)
"""
BROKEN_IN_REPLICA = (
    TRAIN_IRIS
    + """
import os
import random


class FailsInReplica:
    \"\"\"Scores well in the notebook (the gate passes); fails half its requests when served.\"\"\"

    def __init__(self, model):
        self.model, self.pid = model, os.getpid()

    def predict(self, x):
        if os.getpid() != self.pid and random.random() < 0.5:
            raise RuntimeError("broken in the replica")
        return self.model.predict(x)


model = FailsInReplica(model)
"""
)


def test_every_notebook_is_executed_by_a_test() -> None:
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == EXECUTED


def _run_cli(out: Path, *params: str) -> subprocess.CompletedProcess[str]:
    args = [CLI, "run", str(NOTEBOOKS / "deploy.ipynb"), str(out)]
    for pair in zip(params[::2], params[1::2], strict=True):
        args += ["-p", *pair]
    return subprocess.run(args, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def _errors(done: subprocess.CompletedProcess[str]) -> list[str]:
    """Our lines on stderr (the kernel's own warnings aside)."""
    return [ln for ln in done.stderr.splitlines() if ln.startswith(("gate failed", "bad param"))]


def test_deploy_notebook_gates_every_rollout(cluster: Any, tmp_path: Path) -> None:
    import joblib
    import nbformat
    from conftest import Load
    from sklearn.datasets import load_iris
    from sklearn.dummy import DummyClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier

    import jupyter_deploy as jd

    x, y = load_iris(return_X_y=True, as_frame=True)
    _, x_hold, _, y_hold = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    data = tmp_path / "holdout.csv"
    x_hold.assign(target=y_hold).to_csv(data, index=False)
    (tmp_path / "train.py").write_text(TRAIN_IRIS)
    joblib.dump(DummyClassifier().fit(x, y), tmp_path / "dummy.joblib")
    joblib.dump(DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y),
                tmp_path / "tree.joblib")  # fmt: skip
    common = ["name", "gated", "data", str(data), "threshold", "0.8", "max_regression", "0.05"]

    # 1. First deployment: no live version, the threshold alone decides.
    done = _run_cli(tmp_path / "v1.ipynb", *common, "model", str(tmp_path / "train.py"))
    assert done.returncode == 0, done.stderr
    assert "version: 1" in done.stdout and "decision: deploy" in done.stdout
    text, data_out = _outputs(nbformat.read(tmp_path / "v1.ipynb", as_version=4))
    assert "candidate sklearn.linear_model._logistic.LogisticRegression from script" in text
    assert "no live version -> PASS" in text
    record = next(d["application/json"] for d in data_out if "application/json" in d)
    dep = jd.get("gated")
    dep.create_key("test-load", scopes=["predict"])  # the run's key stayed in its kernel
    assert record["bento_tag"] == dep.bento_tag and record["version"] == 1
    assert record["candidate_score"] > 0.9 and record["champion_score"] is None
    assert any("application/vnd.jupyter.widget-view+json" in d for d in data_out)  # monitor

    # 2. A worse candidate fails the gate: exit 4, one line, v1 untouched and serving.
    with Load(dep, limit_s=120) as traffic:
        done = _run_cli(tmp_path / "v2.ipynb", *common, "model", str(tmp_path / "dummy.joblib"))
    assert done.returncode == 4, done.stderr
    (line,) = _errors(done)
    assert line.startswith(
        "gate failed: 'gated' rejected: accuracy 0.3333 is below the "
        "threshold 0.8; accuracy 0.3333 is worse than the live version's"
    )
    assert "live v1 keeps serving" in line
    assert traffic.failures() == [] and set(traffic.versions()) == {"1"}
    assert len(traffic.results) > 20
    assert [v["version"] for v in dep.refresh().versions()] == [1] and dep.version == 1
    text, _ = _outputs(nbformat.read(tmp_path / "v2.ipynb", as_version=4))
    assert "-> FAIL" in text and "Traceback" not in text

    # 3. Bad parameters fail fast, before anything is built or deployed.
    import bentoml

    bentos = len(bentoml.bentos.list())
    for bad, expected in [
        (["model", str(tmp_path / "nope.pkl")], "model file"),
        (["model", str(tmp_path / "train.py"), "data", str(tmp_path / "no.csv")], "data file"),
        (["model", str(tmp_path / "train.py"), "threshold", "1.5"], "between 0 and 1"),
    ]:
        done = _run_cli(tmp_path / "bad.ipynb", *common, *bad)
        assert done.returncode == 2, done.stderr
        (line,) = _errors(done)
        assert line.startswith("bad parameter: ") and expected in line
    assert len(bentoml.bentos.list()) == bentos
    assert dep.refresh().version == 1 and len(dep.versions()) == 1

    # 4. A candidate within the allowed regression rolls out with no failed request.
    with Load(dep, limit_s=180) as traffic:
        done = _run_cli(tmp_path / "v3.ipynb", *common, "model", str(tmp_path / "tree.joblib"))
        wait_for(lambda: traffic.versions()["2"] > 5, 30, "requests served by v2")
    assert done.returncode == 0, done.stderr
    assert traffic.failures() == []
    assert traffic.versions()["1"] > 0 and traffic.versions()["2"] > 0
    text, _ = _outputs(nbformat.read(tmp_path / "v3.ipynb", as_version=4))
    assert "live v1 " in text and "-> PASS" in text
    assert dep.refresh().version == 2

    # 5. rollout=canary: a candidate that fails in the replicas is rolled back: exit 5.
    (tmp_path / "broken.py").write_text(BROKEN_IN_REPLICA)
    fast = json.dumps({"steps": [0.5, 1.0], "interval_s": 3, "min_requests": 10})
    canary = [*common, "rollout", "canary", "canary", fast, "canary_timeout_s", "120"]
    with Load(dep, limit_s=240) as traffic:
        done = _run_cli(tmp_path / "v4.ipynb", *canary, "model", str(tmp_path / "broken.py"))
    assert done.returncode == 5, done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("canary rolled back")]
    assert "v3 went back to 0 %: error rate" in line and "the baseline serves" in line
    assert {s for s, _ in traffic.failures()} <= {500}  # the canary's own answers only
    assert dep.refresh().version == 2 and dep.traffic()["weights"] == {2: 1.0}
    _, data_out = _outputs(nbformat.read(tmp_path / "v4.ipynb", as_version=4))
    record = next(d["application/json"] for d in data_out if "application/json" in d)
    assert record["rollout"] == "canary" and record["rollout_state"] == "rolled_back"
    assert record["version"] == 2 and record["candidate_version"] == 3

    # 6. A healthy canary is promoted and the run says so.
    with Load(dep, limit_s=240) as traffic:
        done = _run_cli(tmp_path / "v5.ipynb", *canary, "model", str(tmp_path / "train.py"))
    assert done.returncode == 0, done.stderr
    assert "rollout_state: promoted" in done.stdout and "version: 4" in done.stdout
    assert traffic.failures() == [] and dep.refresh().version == 4
    dep.delete()


def test_jupyter_finds_the_deploy_subcommand() -> None:
    jupyter = str(Path(sys.executable).parent / "jupyter")
    done = subprocess.run([jupyter, "deploy", "--help"], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0 and "run" in done.stdout and "rollback" in done.stdout
