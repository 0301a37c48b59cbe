"""The deployed endpoint over real HTTP on the session's Ray Serve: API, auth, bad input."""

from __future__ import annotations

import json
from typing import Any

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.cluster

RECORD = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def post(dep: Any, route: str, body: Any, token: str | None = "use-dep") -> httpx.Response:
    token = dep.token if token == "use-dep" else token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{dep.url}/{route}", content=content, headers=headers, timeout=30)


def test_predictions_equal_the_kernel_model(iris_dep: Any, iris_pipe: Any,
                                            iris: tuple[Any, Any]) -> None:  # fmt: skip
    x = iris[0]
    assert iris_dep.predict(x).tolist() == iris_pipe.predict(x).tolist()
    assert np.allclose(iris_dep.predict_proba(x.head(10)), iris_pipe.predict_proba(x.head(10)))
    rows = post(iris_dep, "predict", {"instances": x.head(5).to_numpy().tolist()})
    assert rows.json()["predictions"] == iris_pipe.predict(x.head(5)).tolist()


def test_bentoml_client_speaks_to_the_endpoint(iris_dep: Any, iris_pipe: Any,
                                               iris: tuple[Any, Any]) -> None:  # fmt: skip
    import bentoml

    with bentoml.SyncHTTPClient(iris_dep.url, token=iris_dep.token) as client:
        answer = client.predict(instances=[RECORD])
        proba = client.predict_proba(instances=[RECORD])
    expected = iris_pipe.predict(iris[0].head(1)).tolist()
    assert answer["predictions"] == expected
    assert proba["classes"] == [0, 1, 2]


def test_every_route_but_the_probes_requires_a_key(iris_dep: Any) -> None:
    assert iris_dep.token and len(iris_dep.token) >= 32
    for route in ["readyz", "livez"]:  # probes: no key, and nothing but "ok"
        resp = httpx.get(f"{iris_dep.url}/{route}", timeout=10)
        assert (resp.status_code, resp.text) == (200, "ok"), route
        assert "x-model-version" not in resp.headers
    for route in ["schema.json", "docs.json", "docs", "metadata", "metrics", "nope"]:
        resp = httpx.get(f"{iris_dep.url}/{route}", timeout=10)
        assert resp.status_code == 401, route
        assert resp.headers["www-authenticate"] == "Bearer"
        assert "x-model-version" not in resp.headers
    assert post(iris_dep, "predict", {"instances": [RECORD]}, token=None).status_code == 401
    wrong = post(iris_dep, "predict", {"instances": [RECORD]}, token="x" * 32)
    assert wrong.status_code == 401 and "invalid bearer key" in wrong.json()["error"]
    assert post(iris_dep, "predict", {"instances": [RECORD]}).status_code == 200


def test_health_docs_and_metadata(iris_dep: Any) -> None:
    headers = {"Authorization": f"Bearer {iris_dep.token}"}
    get = lambda route: httpx.get(f"{iris_dep.url}/{route}", headers=headers, timeout=10)  # noqa: E731
    assert get("readyz").status_code == 200 and get("livez").text == "ok"
    routes = {r["name"] for r in get("schema.json").json()["routes"]}
    assert routes == {"predict", "predict_proba"}
    openapi = get("docs.json").json()
    assert "/predict" in openapi["paths"] and openapi["openapi"].startswith("3.")
    meta = get("metadata").json()
    assert meta["version"] == iris_dep.version and meta["bento_tag"] == iris_dep.bento_tag
    assert "text/html" in get("docs").headers["content-type"]


BAD = [
    (b"{not json", 400, "malformed JSON"),
    ({"rows": [RECORD]}, 400, '{"instances": [...]}'),
    ({"instances": [{k: v for k, v in RECORD.items() if k != "petal_width"}]}, 400,
     "missing column(s) 'petal_width'"),
    ({"instances": [{**RECORD, "colour": "red"}]}, 400, "unknown column(s) 'colour'"),
    ({"instances": [{**RECORD, "sepal_width": "wide"}]}, 400, "'sepal_width' expects a number"),
    ({"instances": [[1, 2, 3]]}, 400, "has 3 values, expected 4"),
    ({"instances": []}, 400, "is empty"),
    ({"instances": [RECORD] * 10_001}, 413, "limit of 10000 rows"),
    ({"instances": [{**RECORD, "petal_width": None}]}, 400, "'petal_width' is null"),
    (b'{"instances": [[1, 2, 3, NaN]]}', 400, "'petal_width' is null"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "needle"), BAD)
def test_client_mistakes_get_4xx_naming_the_problem(iris_dep: Any, body: Any, status: int,
                                                    needle: str) -> None:  # fmt: skip
    resp = post(iris_dep, "predict", body)
    assert resp.status_code == status
    assert needle in resp.json()["error"]
    assert post(iris_dep, "predict", {"instances": [RECORD]}).status_code == 200


def test_wrong_method_and_route(iris_dep: Any) -> None:
    headers = {"Authorization": f"Bearer {iris_dep.token}"}
    url = iris_dep.url
    wrong = httpx.get(f"{url}/predict", headers=headers)
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "POST")
    for method in ("TRACE", "PUT", "DELETE", "OPTIONS", "PATCH"):
        for route in ("metrics", "docs.json", "readyz"):
            resp = httpx.request(method, f"{url}/{route}", headers=headers)
            assert resp.status_code == 405, (method, route)
            assert resp.headers["allow"] == "GET, HEAD"
    missing = httpx.get(f"{url}/nope", headers=headers)
    assert missing.status_code == 404 and "/predict" in missing.json()["error"]


def test_a_chunked_body_over_the_limit_is_refused(iris_dep: Any) -> None:
    from jupyter_deploy.replica.app import MAX_BODY_BYTES

    chunk = b" " * (1 << 20)

    def body() -> Any:  # no Content-Length: sent chunked, past the limit
        for _ in range(MAX_BODY_BYTES // len(chunk) + 2):
            yield chunk

    headers = {"Authorization": f"Bearer {iris_dep.token}"}
    resp = httpx.post(f"{iris_dep.url}/predict", content=body(), headers=headers, timeout=60)
    assert resp.status_code == 413 and "bytes" in resp.json()["error"]
    assert post(iris_dep, "predict", {"instances": [RECORD]}).status_code == 200


def test_the_replica_stops_reading_a_body_at_the_limit() -> None:
    import asyncio

    from starlette.requests import Request

    from jupyter_deploy.replica.app import MAX_BODY_BYTES, _read_body

    chunk, given = b" " * (1 << 20), []

    async def receive() -> dict[str, Any]:  # an endless chunked body, as ASGI delivers it
        given.append(1)
        return {"type": "http.request", "body": chunk, "more_body": True}

    scope = {"type": "http", "method": "POST", "headers": [], "path": "/predict"}
    assert asyncio.run(_read_body(Request(scope, receive))) is None
    assert len(given) == MAX_BODY_BYTES // len(chunk) + 1  # one chunk past the limit, no more


def test_the_openapi_document_describes_the_columns(iris_dep: Any) -> None:
    headers = {"Authorization": f"Bearer {iris_dep.token}"}
    doc = httpx.get(f"{iris_dep.url}/docs.json", headers=headers, timeout=10).json()
    body = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    record, row = body["schema"]["properties"]["instances"]["items"]["oneOf"]
    assert record["required"] == list(RECORD) and record["additionalProperties"] is False
    assert {k: v["type"] for k, v in record["properties"].items()} == {
        k: ["number"] for k in RECORD
    }
    assert row["minItems"] == row["maxItems"] == 4 and len(row["prefixItems"]) == 4
    assert doc["paths"]["/readyz"]["get"]["security"] == []


def test_handle_summary(iris_dep: Any) -> None:
    html = iris_dep._repr_html_()
    assert iris_dep.url in html and "curl" in html and "$JD_TOKEN" in html
    assert iris_dep.token not in html and iris_dep.masked_token in html  # saved with the notebook
    assert iris_dep.status()["replicas"].get("RUNNING", 0) >= 1
    assert iris_dep.versions()[-1]["live"] is True


def test_concurrent_requests_each_get_their_own_answer(iris_dep: Any, iris_pipe: Any,
                                                       iris: tuple[Any, Any]) -> None:  # fmt: skip
    from concurrent.futures import ThreadPoolExecutor

    rows = iris[0].sample(64, random_state=1)
    expected = iris_pipe.predict(rows).tolist()
    records = json.loads(rows.to_json(orient="records"))
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda r: post(iris_dep, "predict", {"instances": [r]}), records))
    assert [a.status_code for a in answers] == [200] * 64
    assert [a.json()["predictions"][0] for a in answers] == expected


def test_a_refused_request_fails_alone_in_a_batch(cluster: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder
    from sklearn.tree import DecisionTreeClassifier

    import jupyter_deploy as jd

    x = pd.DataFrame({"colour": ["red", "blue", "green", "red"]})
    model = make_pipeline(OneHotEncoder(), DecisionTreeClassifier()).fit(x, [0, 1, 1, 0])
    dep = jd.deploy(model, name="colours", sample=x, max_replicas=1, progress=False)
    try:
        colours = ["red", "blue", "purple", "green"] * 12
        one = lambda c: post(dep, "predict", {"instances": [{"colour": c}]})  # noqa: E731
        with ThreadPoolExecutor(24) as pool:
            answers = list(pool.map(one, colours))
        for colour, answer in zip(colours, answers, strict=True):
            if colour == "purple":
                assert answer.status_code == 422 and "purple" in answer.json()["error"]
            else:
                assert answer.status_code == 200
                assert answer.json()["predictions"] == [0 if colour == "red" else 1]
    finally:
        dep.delete()


def _listeners(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp) listening on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    found.add(local.rsplit(":", 1)[0])
    return found


def test_haproxy_side_listeners_stay_on_loopback(iris_dep: Any) -> None:
    from jupyter_deploy.control import ingress
    from jupyter_deploy.settings import Settings

    side = ingress.ports(Settings.from_env())
    stats = _listeners(side["stats"])
    assert stats, "HAProxy's stats listener is not up"
    assert stats <= {"0100007F"}  # 127.0.0.1 only
    assert _listeners(Settings.from_env().http_port_int) <= {"0100007F"}


def test_haproxy_runs_as_the_embedded_head_tuned_it(iris_dep: Any) -> None:
    """Half the cores in threads (at most 4) and no per-request log datagram for Serve's
    metrics (the replicas count them): what Serve wrote into HAProxy's config."""
    import os

    from jupyter_deploy import _ray
    from jupyter_deploy.control import ingress
    from jupyter_deploy.settings import Settings

    configs = ingress.runtime_dir(Settings.from_env()).glob("*/haproxy.cfg")  # per head node
    text = max(configs, key=lambda p: p.stat().st_mtime).read_text()  # this session's
    threads = _ray.haproxy_load(os.cpu_count() or 1)["RAY_SERVE_HAPROXY_NBTHREAD"]
    assert threads == "1" if (os.cpu_count() or 1) < 4 else int(threads) <= 4
    assert f"nbthread {threads}\n" in text
    assert "metrics.sock" not in text and "log-format-sd" not in text
