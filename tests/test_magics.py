"""The magics in a real IPython shell: notebook-defined classes, one-line errors."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.cluster

NOTEBOOK_CELL = """
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

class Clip(BaseEstimator, TransformerMixin):  # defined in the notebook: travels by value
    def fit(self, X, y=None):
        self.high_ = X.quantile(0.95)
        return self
    def transform(self, X):
        return X.clip(upper=self.high_, axis=1)

X, y = load_wine(return_X_y=True, as_frame=True)
pipe = make_pipeline(Clip(), StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
unfit = LogisticRegression()
"""


@pytest.fixture(scope="module")
def shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    sh = InteractiveShell.instance()
    sh.run_cell("%load_ext jupyter_deploy").raise_error()
    sh.run_cell(NOTEBOOK_CELL).raise_error()
    return sh


def test_deploy_magic_end_to_end(cluster: Any, shell: Any) -> None:
    result = shell.run_cell("%deploy pipe --name wine --sample X --max-replicas 1")
    result.raise_error()
    dep = result.result
    ns = shell.user_ns
    assert dep.name == "wine" and dep.version == 1
    assert dep.predict(ns["X"]).tolist() == ns["pipe"].predict(ns["X"]).tolist()
    assert dep.spec["autoscaling"]["max_replicas"] == 1
    table = shell.run_cell("%deployments").result
    assert "wine" in [row["name"] for row in table.rows()]
    assert "wine" in table._repr_html_()
    shell.run_cell("%undeploy wine").raise_error()
    assert "wine" not in [row["name"] for row in shell.run_cell("%deployments").result.rows()]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("%deploy nothing", "UnknownVariableError: No variable named 'nothing'"),
        ("%deploy X", "has no predict method"),
        ("%deploy unfit --sample X", "is not fitted yet: call unfit.fit(X, y)"),
        ("%deploy pipe --name Bad/Name", "Invalid deployment name 'Bad/Name'"),
        ("%deploy pipe --sample missing", "No variable named 'missing'"),
        ("%deploy --rollback ghost", "No deployment named 'ghost'"),
        ("%undeploy ghost", "No deployment named 'ghost'"),
        ("%deploy", "Name the model to deploy"),
        (
            "%deploy pipe --sample X --runtime onnx",
            "Step 'clip' (Clip) cannot be exported to ONNX: it is a class defined in the notebook",
        ),
    ],
)
def test_mistakes_are_one_red_line(cluster: Any, shell: Any, capsys: Any, line: str,
                                   needle: str) -> None:  # fmt: skip
    capsys.readouterr()
    result = shell.run_cell(line)
    out = capsys.readouterr()
    assert result.result is None and result.error_in_exec is None
    assert needle in out.err
    assert "Traceback" not in out.err + out.out
    progress = "[jupyter_deploy]"  # the step lines printed outside a notebook
    assert len([ln for ln in out.err.splitlines() if not ln.startswith(progress)]) == 1
