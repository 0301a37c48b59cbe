"""The Ray Serve replica that serves a deployment, one Bento version at a time.

It loads the Bento, never a model pickled from the kernel: the archive comes from the
cluster registry into a node-local cache under ``$BENTOML_HOME``, and predictions go
through the Bento's own ``jd_runtime.py``, so answers match ``bentoml serve`` exactly.
The HTTP handler is a plain ASGI ``__call__``: FastAPI or BentoML's app in this hot path
cost more than the model itself (docs/architecture.md).

A new version whose replica settings are unchanged is loaded *in place*: a watcher thread
follows the deployment's target in the registry, loads the new Bento beside the serving
one and swaps them in one assignment, so the replica never leaves Serve's routing table
and no new worker process has to start (:func:`jupyter_deploy.serving.switch_in_place`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from .aggregator import handle as aggregator_handle
from .loaded import LoadedVersion
from .metrics import Recorder

MAX_BODY_BYTES = 64 * 1024 * 1024
BATCH_MAX_REQUESTS = 32
WATCH_S = 0.25
_log = logging.getLogger("ray.serve")


def _registry() -> Any:
    from .registry import handle

    return handle(create=False)


def _registry_fetch(tag: str) -> bytes | None:
    import ray

    return ray.get(_registry().get_archive.remote(tag))


def _aggregator(name: str) -> Any:
    """The cluster's metrics aggregator, or None (then the replica serves unmonitored)."""
    try:
        return aggregator_handle(create=False)
    except ValueError:
        _log.warning("metrics aggregator not found; %s is not monitored", name)
        return None


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data).encode() if not isinstance(data, bytes) else data
    return Response(body, status_code=status, media_type="application/json", headers=headers)


class ModelReplica:
    """Serve ``predict``/``predict_proba`` and the Bento's docs for the target version."""

    def __init__(self, config: dict[str, Any]) -> None:
        import ray

        self.name: str = config["name"]
        self.token_sha256: str | None = config.get("token_sha256")
        self._code_key: str = config.get("code_key", "")
        self._max_batch_rows: int = config["max_batch_rows"]
        self._replica_id = serve.get_replica_context().replica_id.unique_id
        # The registry's target wins over the init args: Serve may start this replica
        # with the arguments of the version that was live when the application was made.
        target = ray.get(_registry().target.remote(self.name))
        if not target or target.get("code_key") != self._code_key:
            target = {"version": config["version"], "bento_tag": config["bento_tag"]}
        self.state = self._load(target)
        self._failed: int | None = None
        self._aggregator = _aggregator(self.name) if config.get("monitoring") else None
        self._recorder: Recorder | None = None
        if self._aggregator is not None:
            push, replica = self._aggregator.push, self._replica_id
            self._recorder = Recorder(lambda v, c: push.remote(self.name, v, replica, c))
        self._report()
        threading.Thread(target=self._watch, name="jd-version-watch", daemon=True).start()

    def _load(self, target: dict[str, Any]) -> LoadedVersion:
        return LoadedVersion.load(self.name, int(target["version"]), target["bento_tag"],
                                  self._max_batch_rows, _registry_fetch)  # fmt: skip

    def _report(self, error: str | None = None) -> None:
        report = {"version": self.state.version, "failed": self._failed, "error": error}
        _registry().ack.remote(self.name, self._replica_id, report)

    def _watch(self) -> None:
        """Follow the registry's target version; load and swap in place when it changes."""
        import ray

        registry = _registry()
        while True:
            time.sleep(WATCH_S)
            try:
                target = ray.get(registry.target.remote(self.name), timeout=10)
            except Exception:  # the registry restarting must not kill the replica
                _log.warning("could not read the target version of %s", self.name)
                continue
            if (
                not target
                or target.get("code_key") != self._code_key
                or target["version"] in (self.state.version, self._failed)
            ):
                continue
            try:
                new = self._load(target)
            except Exception as exc:
                self._failed = int(target["version"])
                _log.exception("could not load v%s of %s", target["version"], self.name)
                self._report(f"{type(exc).__name__}: {exc}")
                continue
            old, self.state, self._failed = self.state, new, None
            old.unload()
            self._report()

    def _authorized(self, header: str | None) -> bool:
        if self.token_sha256 is None:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        digest = hashlib.sha256(header[7:].strip().encode()).hexdigest()
        return hmac.compare_digest(digest, self.token_sha256)

    async def __call__(self, request: Request) -> Response:
        state = self.state  # one version per request, even if a swap happens meanwhile
        if self._recorder is None:
            return await self._route(request, state)
        started = time.perf_counter()
        response = await self._route(request, state)
        self._recorder.record(
            state.version,
            response.status_code,
            (time.perf_counter() - started) * 1000,
            request.scope.get("jd_rows", 0),
            request.scope.get("jd_error"),
        )
        return response

    async def _route(self, request: Request, state: LoadedVersion) -> Response:
        scope = request.scope
        path = scope["path"][len(scope.get("root_path", "")) :] or "/"
        headers = state.headers
        if not self._authorized(request.headers.get("authorization")):
            scope["jd_error"] = "Unauthorized"
            return _json(
                {"error": "missing or invalid bearer token: send 'Authorization: Bearer <token>'"},
                401,
                {"www-authenticate": "Bearer", **headers},
            )
        if path in ("/predict", "/predict_proba"):
            if request.method != "POST":
                return _json({"error": f"use POST for {path}"}, 405, headers)
            return await self._predict(request, state, path[1:])
        if path == "/metrics" and self._aggregator is not None:
            # Only this deployment's figures: its token must not reveal other deployments.
            text = await self._aggregator.prometheus.remote(self.name)
            return Response(text, media_type="text/plain; version=0.0.4", headers=headers)
        route = state.get_routes.get(path)
        if route is None:
            known = ["/predict", *state.get_routes]
            return _json({"error": f"no route {path}; routes: {known}"}, 404, headers)
        if request.method not in ("GET", "HEAD"):
            return _json({"error": f"use GET for {path}"}, 405, headers)
        return Response(route[0], media_type=route[1], headers=headers)

    # Requests that arrive together share one model call; a zero wait means a lone
    # request never waits for company (bench: ~1.7x the throughput at c=32, +0.3 ms p50).
    @serve.batch(max_batch_size=BATCH_MAX_REQUESTS, batch_wait_timeout_s=0.0)
    async def _batched(self, calls: list[tuple[LoadedVersion, str, Any]]) -> list[Any]:
        results: list[Any] = [None] * len(calls)
        # Calls are grouped by version (a swap may happen between two requests) and method.
        for key in {(id(state), method) for state, method, _ in calls}:
            idx = [i for i, (st, m, _) in enumerate(calls) if (id(st), m) == key]
            runtime, method = calls[idx[0]][0].runtime, calls[idx[0]][1]
            inputs = [calls[i][2] for i in idx]
            try:
                merged = inputs[0] if len(inputs) == 1 else runtime.concat(inputs)
                out = runtime.run(method, merged)
            except Exception:
                # One request's data failed the batch: run each alone so only it fails.
                for i, x in zip(idx, inputs, strict=True):
                    try:
                        results[i] = runtime.run(method, x)
                    except Exception as exc:
                        results[i] = exc
                continue
            start = 0
            for i, x in zip(idx, inputs, strict=True):
                results[i] = out[start : start + len(x)]
                start += len(x)
        return results

    async def _predict(self, request: Request, state: LoadedVersion, method: str) -> Response:
        headers, runtime = state.headers, state.runtime
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return _json({"error": f"body over {MAX_BODY_BYTES} bytes"}, 413, headers)
        body = await request.body()
        try:
            runtime.check_method(method)
            x = runtime.to_model_input(runtime.instances_from_body(body))
            request.scope["jd_rows"] = len(x)
            out = await self._batched((state, method, x))
            if isinstance(out, BaseException):
                raise out
            answer = runtime.answer(method, out)
        except state.input_error as err:
            request.scope["jd_error"] = type(err).__name__
            return _json({"error": str(err)}, err.status, headers)  # type: ignore[attr-defined]
        except Exception:
            request.scope["jd_error"] = "ModelError"
            _log.exception("prediction failed in %s v%s", self.name, state.version)
            return _json({"error": "the model failed on this input; see the replica log"}, 500)
        return Response(state.dumps(answer), media_type="application/json", headers=headers)
