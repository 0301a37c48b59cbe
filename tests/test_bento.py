"""The Bento built by deploy is standalone: bentoml serve gives the same API and answers."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import bentoml_serve

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_bentoml_serve_of_the_bento_answers_the_same(iris_dep: Any, iris: tuple[Any, Any],
                                                     tmp_path: Path) -> None:  # fmt: skip
    import bentoml

    x = iris[0].head(30)
    records = x.to_dict(orient="records")
    with bentoml_serve(iris_dep.bento_tag, tmp_path / "bentoml-serve.log") as url:
        with bentoml.SyncHTTPClient(url) as client:
            standalone = client.predict(instances=records)["predictions"]
        assert standalone == iris_dep.predict(x).tolist()
        bad = httpx.post(f"{url}/predict", json={"instances": [{"sepal_length": 1.0}]})
        assert bad.status_code == 400 and "missing column(s)" in bad.text


def test_bento_exports_and_does_not_import_jupyter_deploy(iris_dep: Any, tmp_path: Path) -> None:
    import bentoml

    bento = bentoml.get(iris_dep.bento_tag)
    sources = list(Path(bento.path, "src").glob("*.py"))
    assert {p.name for p in sources} == {"service.py", "jd_runtime.py", "jd_models.py"}
    for src in sources:
        tree = ast.parse(src.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(m.startswith("jupyter_deploy") for m in imported), src.name
    reqs = Path(bento.path, "env", "python", "requirements.txt").read_text()
    assert "scikit-learn==" in reqs and "jupyter" not in reqs
    archive = bentoml.export_bento(iris_dep.bento_tag, str(tmp_path / "iris.bento"))
    assert Path(archive).stat().st_size > 1000
