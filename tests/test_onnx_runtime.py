"""runtime="onnx": the replicas (and bentoml serve) run the deploy-time ONNX graph.

Same routes, validation and answers as the default runtime, compared on the session's
shared cluster against the iris deployment made with the default runtime; refusals are
checked before any cluster is involved.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import bentoml_serve, wait_for

import jupyter_deploy as jd
from jupyter_deploy.client.table import DeploymentTable
from jupyter_deploy.errors import ExportError, InvalidSpecError

BAD_BODIES = [
    b"not json",
    b'{"rows": []}',
    b'{"instances": []}',
    b'{"instances": [{"sepal_length": 1.0}]}',
    b'{"instances": [[1, 2, 3]]}',
    b'{"instances": [{"sepal_length": "x", "sepal_width": 1, "petal_length": 1, '
    b'"petal_width": 1}]}',
    b'{"instances": [[1, 2, null, 4]]}',
]


def _post(url: str, token: str | None, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(url, content=body, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def onnx_dep(cluster: Any, iris_pipe: Any, iris: tuple[Any, Any]) -> Any:
    return jd.deploy(iris_pipe, name="iris-onnx", sample=iris[0], runtime="onnx", progress=False)


@pytest.mark.cluster
def test_onnx_replicas_answer_like_the_python_runtime(
    onnx_dep: Any, iris_dep: Any, iris: tuple[Any, Any]
) -> None:
    x = iris[0].sample(40, random_state=1)
    assert onnx_dep.runtime == "onnx" and iris_dep.runtime == "python"
    assert "onnx (checked on 150 sample rows: 100.00% agree" in onnx_dep._repr_html_()
    assert onnx_dep.versions()[-1]["runtime"] == "onnx"
    table = {r["name"]: r["runtime"] for r in DeploymentTable(jd.list_deployments()).rows()}
    assert table["iris-onnx"] == "onnx" and table["iris"] == "python"
    assert onnx_dep.predict(x).tolist() == iris_dep.predict(x).tolist()
    np.testing.assert_allclose(onnx_dep.predict_proba(x), iris_dep.predict_proba(x), atol=1e-6)
    for body in BAD_BODIES:
        mine = _post(f"{onnx_dep.url}/predict", onnx_dep.token, body)
        theirs = _post(f"{iris_dep.url}/predict", iris_dep.token, body)
        assert (mine.status_code, mine.json()) == (theirs.status_code, theirs.json()), body
        assert 400 <= mine.status_code < 500
    meta = httpx.get(f"{onnx_dep.url}/metadata",
                     headers={"Authorization": f"Bearer {onnx_dep.token}"}).json()  # fmt: skip
    assert meta["methods"] == ["predict", "predict_proba"]
    counted = lambda: onnx_dep.metrics()["total_by_status"].get("400", 0) >= 5  # noqa: E731
    wait_for(counted, 20, "the graph's 400s to reach the aggregator")


@pytest.mark.cluster
@pytest.mark.slow
def test_bentoml_serve_of_an_onnx_bento_answers_the_same(
    onnx_dep: Any, iris_dep: Any, iris: tuple[Any, Any], tmp_path: Path
) -> None:
    import bentoml

    bento = bentoml.bentos.get(onnx_dep.bento_tag)
    model_dir = Path(bentoml.models.get(bento.info.models[0].tag).path)
    assert json.loads((model_dir / "serving.json").read_text())["runtime"] == "onnx"
    reqs = Path(bento.path, "env", "python", "requirements.txt").read_text()
    assert "onnxruntime==" in reqs
    x = iris[0].head(20)
    records = json.loads(x.to_json(orient="records"))
    with bentoml_serve(onnx_dep.bento_tag, tmp_path / "serve.log") as url:
        answer = httpx.post(f"{url}/predict_proba", json={"instances": records}, timeout=30)
        bad = httpx.post(f"{url}/predict", content=BAD_BODIES[3],
                         headers={"Content-Type": "application/json"})  # fmt: skip
    np.testing.assert_allclose(answer.json()["predictions"], iris_dep.predict_proba(x), atol=1e-6)
    assert answer.json()["classes"] == [0, 1, 2]
    assert bad.status_code == 400 and "missing column(s)" in bad.text


def test_models_onnx_cannot_serve_are_refused_before_anything_is_built(
    iris: tuple[Any, Any], iris_pipe: Any
) -> None:
    import bentoml
    from sklearn.svm import NuSVR
    from sklearn.tree import DecisionTreeRegressor

    x, y = iris
    with pytest.raises(InvalidSpecError, match="Unknown runtime 'tensorrt'"):
        jd.deploy(iris_pipe, name="rt-bad", sample=x, runtime="tensorrt", progress=False)
    with pytest.raises(ExportError, match="pass sample="):
        jd.deploy(iris_pipe, name="rt-nosample", runtime="onnx", progress=False)
    odd = NuSVR().fit(x, y)
    odd.__class__ = type("Odd", (NuSVR,), {"__module__": "__main__"})
    with pytest.raises(ExportError, match="class defined in the notebook"):
        jd.deploy(odd, name="rt-odd", sample=x, runtime="onnx", progress=False)
    # A model whose predict is not what its fitted parameters say: the graph disagrees.
    shifted = DecisionTreeRegressor(max_depth=3).fit(x, y)
    shifted.predict = lambda rows: DecisionTreeRegressor.predict(shifted, rows) + 1
    with pytest.raises(ExportError, match=r"agrees with the model on only 0\.00%"):
        jd.deploy(shifted, name="rt-shifted", sample=x, runtime="onnx", progress=False)
    built = {b.info.name for b in bentoml.bentos.list()}
    assert not built & {"rt-bad", "rt-nosample", "rt-odd", "rt-shifted"}


def test_an_unchanged_model_reuses_its_onnx_bento(iris: tuple[Any, Any], iris_pipe: Any) -> None:
    from jupyter_deploy.build.capture import capture
    from jupyter_deploy.build.packaging import build_bento
    from jupyter_deploy.export.onnx import for_serving
    from jupyter_deploy.spec import DeploymentSpec

    spec = DeploymentSpec(name="rt-reuse", runtime="onnx")
    built = []
    for _ in range(2):
        cap = capture(iris_pipe, sample=iris[0])
        for_serving(cap, iris[0])
        built.append(build_bento(cap, spec))
    assert built[1].reused and built[1].tag == built[0].tag
