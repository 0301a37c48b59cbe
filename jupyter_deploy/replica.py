"""The Ray Serve replica that serves one version of a Bento.

It loads the Bento, never a model pickled from the kernel: the archive comes from the
cluster registry into a node-local cache under ``$BENTOML_HOME``, and predictions go
through the Bento's own ``jd_runtime.py``, so answers match ``bentoml serve`` exactly.
The HTTP handler is a plain ASGI ``__call__``: FastAPI or BentoML's app in this hot path
cost more than the model itself (docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import io
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from .aggregator import handle as aggregator_handle
from .metrics import Recorder

MAX_BODY_BYTES = 64 * 1024 * 1024
BATCH_MAX_REQUESTS = 32
_log = logging.getLogger("ray.serve")
_DOCS_HTML = """<!doctype html><html><head><title>{name} API</title></head><body>
<h1>{name} v{version}</h1><p>OpenAPI document: <a href="docs.json">docs.json</a>.
Routes: POST predict{proba}; GET readyz, livez, schema.json, metadata.
Every route needs <code>Authorization: Bearer &lt;token&gt;</code> unless auth is off.</p>
</body></html>"""


def bento_cache_root() -> Path:
    home = os.environ.get("BENTOML_HOME") or str(Path.home() / "bentoml")
    return Path(home) / "jupyter_deploy" / "bentos"


def local_bento(tag: str, fetch: Any) -> Path:
    """Path of the unpacked Bento ``tag`` on this node; ``fetch(tag)`` gives its archive."""
    name, version = tag.split(":")
    target = bento_cache_root() / name / version
    if (target / "bento.yaml").exists():
        return target
    data = fetch(tag)
    if data is None:
        raise RuntimeError(f"Bento {tag} is not in the cluster registry; deploy it again.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{version}-"))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        tar.extractall(tmp, filter="data")
    try:
        tmp.rename(target)  # atomic: replicas on one node may unpack at the same time
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _registry_fetch(tag: str) -> bytes | None:
    import ray

    from .registry import handle

    return ray.get(handle(create=False).get_archive.remote(tag))


def load_runtime_module(bento_dir: Path, key: str) -> ModuleType:
    """Import the Bento's own ``src/jd_runtime.py`` under a name unique to this Bento."""
    spec = importlib.util.spec_from_file_location(
        f"jd_runtime_{key}", bento_dir / "src" / "jd_runtime.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


def _aggregator(name: str, version: int) -> Any:
    """The cluster's metrics aggregator, or None (then the replica serves unmonitored)."""
    try:
        return aggregator_handle(create=False)
    except ValueError:
        _log.warning("metrics aggregator not found; %s v%s is not monitored", name, version)
        return None


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data).encode() if not isinstance(data, bytes) else data
    return Response(body, status_code=status, media_type="application/json", headers=headers)


class ModelReplica:
    """Serve ``predict``/``predict_proba`` and the Bento's docs for one version."""

    def __init__(self, config: dict[str, Any]) -> None:
        import yaml

        self.name: str = config["name"]
        self.version: int = config["version"]
        self.token_sha256: str | None = config.get("token_sha256")
        bento_dir = local_bento(config["bento_tag"], _registry_fetch)
        bento = yaml.safe_load((bento_dir / "bento.yaml").read_text())
        model_name, model_version = bento["models"][0]["tag"].split(":")
        rt = load_runtime_module(bento_dir, f"{self.name}_{self.version}")
        self.runtime = rt.ModelRuntime.from_dir(
            bento_dir / "models" / model_name / model_version, config["max_batch_rows"]
        )
        self._input_error = rt.InputError
        self._dumps = rt.dumps
        self._aggregator = (
            _aggregator(self.name, self.version) if config.get("monitoring") else None
        )
        self._recorder: Recorder | None = None
        if self._aggregator is not None:
            push, replica = self._aggregator.push, serve.get_replica_context().replica_id.unique_id
            self._recorder = Recorder(lambda c: push.remote(self.name, self.version, replica, c))
        self._headers = {"x-model-version": str(self.version)}
        openapi = yaml.safe_load((bento_dir / "apis" / "openapi.yaml").read_text())
        proba = ", predict_proba" if "predict_proba" in self.runtime.methods else ""
        self._get_routes: dict[str, tuple[bytes, str]] = {
            "/readyz": (b"ok", "text/plain"),
            "/livez": (b"ok", "text/plain"),
            "/healthz": (b"ok", "text/plain"),
            "/schema.json": ((bento_dir / "apis" / "schema.json").read_bytes(), "application/json"),
            "/docs.json": (json.dumps(openapi).encode(), "application/json"),
            "/docs": (
                _DOCS_HTML.format(name=self.name, version=self.version, proba=proba).encode(),
                "text/html",
            ),
            "/metadata": (
                json.dumps(
                    {
                        "name": self.name,
                        "version": self.version,
                        "bento_tag": config["bento_tag"],
                        "methods": self.runtime.methods,
                        "input_schema": self.runtime.schema.to_dict(),
                    }
                ).encode(),
                "application/json",
            ),
        }

    def _authorized(self, header: str | None) -> bool:
        if self.token_sha256 is None:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        digest = hashlib.sha256(header[7:].strip().encode()).hexdigest()
        return hmac.compare_digest(digest, self.token_sha256)

    async def __call__(self, request: Request) -> Response:
        if self._recorder is None:
            return await self._route(request)
        started = time.perf_counter()
        response = await self._route(request)
        self._recorder.record(
            response.status_code,
            (time.perf_counter() - started) * 1000,
            request.scope.get("jd_rows", 0),
            request.scope.get("jd_error"),
        )
        return response

    async def _route(self, request: Request) -> Response:
        scope = request.scope
        path = scope["path"][len(scope.get("root_path", "")) :] or "/"
        if not self._authorized(request.headers.get("authorization")):
            scope["jd_error"] = "Unauthorized"
            return _json(
                {"error": "missing or invalid bearer token: send 'Authorization: Bearer <token>'"},
                401,
                {"www-authenticate": "Bearer", **self._headers},
            )
        if path in ("/predict", "/predict_proba"):
            if request.method != "POST":
                return _json({"error": f"use POST for {path}"}, 405, self._headers)
            return await self._predict(request, path[1:])
        if path == "/metrics" and self._aggregator is not None:
            # Only this deployment's figures: its token must not reveal other deployments.
            text = await self._aggregator.prometheus.remote(self.name)
            return Response(text, media_type="text/plain; version=0.0.4", headers=self._headers)
        route = self._get_routes.get(path)
        if route is None:
            known = ["/predict", *self._get_routes]
            return _json({"error": f"no route {path}; routes: {known}"}, 404, self._headers)
        if request.method not in ("GET", "HEAD"):
            return _json({"error": f"use GET for {path}"}, 405, self._headers)
        return Response(route[0], media_type=route[1], headers=self._headers)

    # Requests that arrive together share one model call; a zero wait means a lone
    # request never waits for company (bench: ~1.7x the throughput at c=32, +0.3 ms p50).
    @serve.batch(max_batch_size=BATCH_MAX_REQUESTS, batch_wait_timeout_s=0.0)
    async def _batched(self, calls: list[tuple[str, Any]]) -> list[Any]:
        results: list[Any] = [None] * len(calls)
        for method in {m for m, _ in calls}:
            idx = [i for i, (m, _) in enumerate(calls) if m == method]
            inputs = [calls[i][1] for i in idx]
            try:
                merged = inputs[0] if len(inputs) == 1 else self.runtime.concat(inputs)
                out = self.runtime.run(method, merged)
            except Exception:
                # One request's data failed the batch: run each alone so only it fails.
                for i, x in zip(idx, inputs, strict=True):
                    try:
                        results[i] = self.runtime.run(method, x)
                    except Exception as exc:
                        results[i] = exc
                continue
            start = 0
            for i, x in zip(idx, inputs, strict=True):
                results[i] = out[start : start + len(x)]
                start += len(x)
        return results

    async def _predict(self, request: Request, method: str) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return _json({"error": f"body over {MAX_BODY_BYTES} bytes"}, 413, self._headers)
        body = await request.body()
        try:
            self.runtime.check_method(method)
            x = self.runtime.to_model_input(self.runtime.instances_from_body(body))
            request.scope["jd_rows"] = len(x)
            out = await self._batched((method, x))
            if isinstance(out, BaseException):
                raise out
            answer = self.runtime.answer(method, out)
        except self._input_error as err:
            request.scope["jd_error"] = type(err).__name__
            return _json({"error": str(err)}, err.status, self._headers)
        except Exception:
            request.scope["jd_error"] = "ModelError"
            _log.exception("prediction failed in %s v%s", self.name, self.version)
            return _json({"error": "the model failed on this input; see the replica log"}, 500)
        return Response(self._dumps(answer), media_type="application/json", headers=self._headers)
