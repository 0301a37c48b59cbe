"""No endpoint token in what is saved or polled: notebook outputs and the panel's JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = pytest.mark.cluster

CELLS = [
    "%load_ext jupyter_deploy\n"
    "import jupyter_deploy as jd\n"
    "from sklearn.datasets import load_iris\n"
    "from sklearn.tree import DecisionTreeClassifier\n"
    "X, y = load_iris(return_X_y=True, as_frame=True)\n"
    "model = DecisionTreeClassifier(random_state=0).fit(X, y)",
    "dep = %deploy model --name nb-secret --sample X\ndep",  # the deploy summary
    "dep",
    "print(dep.curl())\nprint(repr(dep))",
    "print('token in the kernel:', len(dep.token), dep.masked_token[:4] == dep.token[:4])",
    # Only this kernel holds the key (the store has its hash): hand it to the test, not
    # to the notebook's outputs.
    "import pathlib; pathlib.Path('key.txt').write_text(dep.token)",
]


def test_saved_notebook_and_panel_json_hold_no_token(cluster: Any, tmp_path: Path) -> None:
    import papermill as pm

    import jupyter_deploy as jd
    from jupyter_deploy.server import operations

    source = tmp_path / "secret.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "py"}
    nbformat.write(nb, source)
    out = tmp_path / "secret.out.ipynb"
    pm.execute_notebook(str(source), str(out), kernel_name="python3", progress_bar=False,
                        cwd=str(tmp_path))  # fmt: skip
    try:
        dep = jd.get("nb-secret")
        assert dep.token is None  # another process: only the kernel that deployed holds it
        token = (tmp_path / "key.txt").read_text()
        assert len(token) >= 32
        saved = out.read_text()
        assert token not in saved
        assert "token in the kernel: 43 True" in saved  # dep.token still works in the kernel
        assert "$JD_TOKEN" in saved and f"{token[:4]}{'•' * 8}" in saved
        panel = json.dumps([operations.list_deployments(), operations.deployment("nb-secret")])
        assert "nb-secret" in panel and token not in panel
    finally:
        jd.undeploy("nb-secret")
