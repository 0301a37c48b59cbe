"""The Deploy panel's server extension: every REST route, auth, errors, import cost.

A real Jupyter server (pytest-jupyter) with unauthenticated access forbidden, and the
session's real Ray cluster behind it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import warnings
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

pytest_plugins = ("pytest_jupyter.jupyter_server",)

API = ("jupyter-deploy", "api")


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_deploy": True},
            # Every endpoint must require authentication; the server refuses to serve
            # core endpoints otherwise and warns about extension ones (checked below).
            "allow_unauthenticated_access": False,
        }
    }


async def _json(jp_fetch: Any, *path: str, **kwargs: Any) -> tuple[int, Any]:
    resp = await jp_fetch(*API, *path, raise_error=False, **kwargs)
    return resp.code, json.loads(resp.body or b"null")


def _routes() -> list[tuple[str, str, str]]:
    """(method, path, handler) for every method of every route, names filled in."""
    from jupyter_deploy.server.handlers import ROUTES

    found = []
    for pattern, handler in ROUTES:
        path = pattern.replace("(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)", "somename")
        for method in ("GET", "POST", "DELETE"):
            if method.lower() in handler.__dict__:
                found.append((method, path, handler.__name__))
    return found


def test_import_does_not_load_ray_or_bentoml() -> None:
    code = (
        "import sys, jupyter_deploy, jupyter_deploy.server, jupyter_deploy.server.handlers\n"
        "heavy = [m for m in ('ray', 'bentoml', 'sklearn', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_extension_hooks() -> None:
    import jupyter_deploy

    assert jupyter_deploy._jupyter_server_extension_points() == [
        {"module": "jupyter_deploy.server"}
    ]
    assert jupyter_deploy._jupyter_labextension_paths()[0]["dest"] == "jupyter-deploy"


def test_every_handler_is_decorated(jp_serverapp: Any) -> None:
    from jupyter_deploy.server.handlers import ROUTES

    for pattern, handler in ROUTES:
        missing = jp_serverapp.web_app._check_handler_auth(pattern, handler)
        assert missing == [], missing


async def test_unauthenticated_requests_are_refused(jp_fetch: Any) -> None:
    routes = _routes()
    assert len(routes) == 8
    for method, path, handler in routes:
        body = b"{}" if method == "POST" else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            resp = await jp_fetch(*API, *path.split("/"), method=method, body=body,
                                  headers={"Authorization": ""}, raise_error=False)  # fmt: skip
        assert resp.code == 403, f"{method} {path} ({handler}) answered {resp.code}"
        assert "error" in json.loads(resp.body), resp.body


async def test_cookie_sessions_need_the_xsrf_token(
    jp_fetch: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("JD_HOME", str(tmp_path / "empty-home"))
    # A token-authenticated GET gives the browser its login cookie.
    resp = await jp_fetch(*API, "cluster")
    login = next(
        c.split(";")[0] for c in resp.headers.get_list("Set-Cookie") if c.startswith("username")
    )
    route = (*API, "deployments", "iris", "rollback")
    no_token = {"Authorization": "", "Cookie": login}
    resp = await jp_fetch(*route, method="POST", body=b"", headers=no_token, raise_error=False)
    assert resp.code == 403 and "_xsrf" in json.loads(resp.body)["error"]
    with_xsrf = {**no_token, "Cookie": f"{login}; _xsrf=panel-xsrf", "X-XSRFToken": "panel-xsrf"}
    code, body = await _json(jp_fetch, *route[2:], method="POST", body=b"", headers=with_xsrf)
    assert code == 503 and "No cluster is running" in body["error"]


async def test_no_cluster_is_reported_not_started(
    jp_fetch: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # An empty JD_HOME: no embedded cluster recorded there.
    monkeypatch.setenv("JD_HOME", str(tmp_path / "empty-home"))
    code, body = await _json(jp_fetch, "cluster")
    assert (code, body["running"]) == (200, False)
    code, body = await _json(jp_fetch, "deployments")
    assert code == 200 and body == {"cluster": body["cluster"], "deployments": []}
    assert body["cluster"]["running"] is False
    code, body = await _json(jp_fetch, "deployments", "iris", "rollback", method="POST",
                             body=b"")  # fmt: skip
    assert code == 503 and "No cluster is running" in body["error"]
    assert not (tmp_path / "empty-home" / "cluster.json").exists()


@pytest.fixture(scope="module")
def two_versions(cluster: Any, iris_pipe: Any, iris: tuple[Any, Any]) -> str:
    """'panelrest' deployed twice: v1 through the kernel bridge, v2 through the API."""
    import jupyter_deploy as jd
    from jupyter_deploy.server import kernel_bridge

    ns = {"model": iris_pipe, "X": iris[0]}
    kernel_bridge.deploy(ns, "model", name="panelrest", sample="X", max_replicas=2)
    dep = jd.deploy(iris_pipe, name="panelrest", sample=iris[0], progress=False)
    assert dep.version == 2
    dep.predict(iris[0].head(3))
    dep.predict(iris[0].head(3))
    return dep.name


@pytest.mark.cluster
async def test_list_and_live_figures(jp_fetch: Any, two_versions: str) -> None:
    code, body = await _json(jp_fetch, "cluster")
    assert (code, body["running"], body["embedded"]) == (200, True, True)
    # Right after a rollout Serve may still say DEPLOYING while the old replica stops.
    deadline = time.monotonic() + 60
    while True:
        code, body = await _json(jp_fetch, "deployments")
        assert code == 200 and body["cluster"]["running"]
        row = next(d for d in body["deployments"] if d["name"] == two_versions)
        if row["status"] == "RUNNING" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert row["status"] == "RUNNING"
    assert row["version"] == 2 and row["versions"] == [1, 2]
    assert row["replicas"]["min"] == 1 and row["replicas"]["max"] == 2
    assert row["replicas"]["running"] >= 1
    assert row["url"].endswith("/panelrest") and "curl -s -X POST" in row["curl"]
    assert row["total_requests"] >= 2 and row["rate_rps"] > 0 and row["p95_ms"] > 0

    code, one = await _json(jp_fetch, "deployments", two_versions)
    assert code == 200 and one["name"] == two_versions
    code, snap = await _json(jp_fetch, "deployments", two_versions, "metrics",
                             params={"window": "30"})  # fmt: skip
    assert code == 200 and snap["window_s"] == 30 and snap["total_requests"] >= 2


@pytest.mark.cluster
async def test_errors_are_json_with_status(jp_fetch: Any, two_versions: str) -> None:
    code, body = await _json(jp_fetch, "deployments", "nosuchthing")
    assert code == 404 and "No deployment named 'nosuchthing'" in body["error"]
    code, body = await _json(jp_fetch, "deployments", two_versions, "metrics",
                             params={"window": "soon"})  # fmt: skip
    assert code == 400 and "window" in body["error"]
    code, body = await _json(jp_fetch, "deployments", two_versions, "scale", method="POST",
                             body=b"not json")  # fmt: skip
    assert code == 400 and "not JSON" in body["error"]
    code, body = await _json(jp_fetch, "deployments", two_versions, "scale", method="POST",
                             body=json.dumps({"min_replicas": 1}))  # fmt: skip
    assert code == 400 and "max_replicas" in body["error"]
    code, body = await _json(jp_fetch, "deployments", two_versions, "scale", method="POST",
                             body=json.dumps({"min_replicas": 3, "max_replicas": 1}))  # fmt: skip
    assert code == 400 and body["error"]


@pytest.mark.cluster
async def test_scale_rollback_delete(jp_fetch: Any, two_versions: str) -> None:
    import jupyter_deploy as jd

    code, row = await _json(jp_fetch, "deployments", two_versions, "scale", method="POST",
                            body=json.dumps({"min_replicas": 1, "max_replicas": 3}))  # fmt: skip
    assert code == 200 and row["replicas"]["max"] == 3
    assert jd.get(two_versions).spec["autoscaling"]["max_replicas"] == 3

    code, row = await _json(jp_fetch, "deployments", two_versions, "rollback", method="POST",
                            body=b"")  # fmt: skip
    assert code == 200 and row["version"] == 1
    assert jd.get(two_versions).version == 1
    code, body = await _json(jp_fetch, "deployments", two_versions, "rollback", method="POST",
                             body=b"")  # fmt: skip
    assert code == 409 and "no version before v1" in body["error"]
    assert row["traffic"]["weights"] == {"1": 1.0} and row["traffic"]["canary"] is None

    code, row = await _json(jp_fetch, "deployments", two_versions, "promote", method="POST",
                            body=b"")  # fmt: skip
    assert code == 200 and row["version"] == 2 and row["traffic"]["weights"] == {"2": 1.0}

    code, body = await _json(jp_fetch, "deployments", two_versions, method="DELETE")
    assert (code, body) == (200, {"deleted": two_versions})
    code, body = await _json(jp_fetch, "deployments", two_versions)
    assert code == 404
    with pytest.raises(HTTPClientError):
        await jp_fetch(*API, "deployments", two_versions, method="DELETE")


def test_kernel_bridge_lists_and_reports_errors(
    iris_pipe: Any, iris: tuple[Any, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from jupyter_deploy.server import kernel_bridge

    ns = {"pipe": iris_pipe, "X": iris[0], "n": 3, "_hidden": iris_pipe, "cls": type(iris_pipe)}
    assert kernel_bridge.deployable(ns) == [
        {"variable": "pipe", "type": "Pipeline", "has_proba": True}
    ]
    kernel_bridge.list_models(ns)
    out = capsys.readouterr().out
    framed = out.split(kernel_bridge.MARK)[1]
    assert json.loads(framed) == {
        "models": [{"variable": "pipe", "type": "Pipeline", "has_proba": True}],
        "samples": ["X"],
        "defaults": {"min_replicas": 1, "max_replicas": 2},  # the spec's: the form starts there
    }
    kernel_bridge.deploy(ns, "nothere")
    answer = json.loads(capsys.readouterr().out.split(kernel_bridge.MARK)[1])
    assert answer["ok"] is False and answer["status"] == 404
    assert "No variable named 'nothere'" in answer["error"]


def test_worker_replaces_a_dead_child(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from jupyter_deploy.errors import ClusterError
    from jupyter_deploy.server.worker import Worker

    monkeypatch.setenv("JD_HOME", str(tmp_path / "empty-home"))
    worker = Worker()
    try:
        assert worker.call("cluster_status")["running"] is False
        first = worker._proc
        first.kill()  # as Ray does to a driver whose cluster vanished
        first.join(timeout=10)
        assert worker.call("cluster_status")["running"] is False
        assert worker._proc is not first and worker._proc.is_alive()
        with pytest.raises(ClusterError) as err:  # the child's error keeps its class
            worker.call("rollback", "iris")
        assert err.value.status == 503
    finally:
        worker.stop()
