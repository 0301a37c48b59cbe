"""Notebooks in notebooks/ run headless through papermill in a real kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
    assert any("application/vnd.jupyter.widget-view+json" in d for d in data)  # the monitor
    counted = int(text.split("requests counted: ")[1].split(",")[0])
    assert counted >= 20 + 1  # 20 queries of 3 rows + the 45-row predict, at least
    dep = jd.get("qs-test")  # made by the notebook's kernel, seen from here
    assert dep.metrics()["total_requests"] == counted
    dep.delete()
