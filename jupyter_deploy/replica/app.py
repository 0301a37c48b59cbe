"""The Ray Serve replica that serves a deployment, one Bento version at a time.

It loads the Bento, never a model pickled from the kernel: the archive comes from the
cluster registry into a node-local cache under ``$BENTOML_HOME``, and predictions go
through the Bento's own ``jd_runtime.py``, so answers match ``bentoml serve`` exactly.
The HTTP handler is a plain ASGI ``__call__``: FastAPI or BentoML's app in this hot path
cost more than the model itself (docs/architecture.md).

Which version to serve is pushed, never polled: it is Serve's ``user_config`` (a
:class:`~jupyter_deploy.control.records.ServeTarget`), handed to :meth:`reconfigure` when
the replica starts and whenever the desired state changes. A new version whose replica
settings are unchanged is so loaded *in place*: beside the serving one, off the event loop,
then swapped in one assignment, so the replica never leaves Serve's routing table and no
new worker process has to start (:func:`jupyter_deploy.rollout.serving.rollout`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from ..control.records import ReplicaReport, ServeTarget
from ..monitoring.aggregator import handle as aggregator_handle
from .batcher import Batcher
from .loaded import LoadedVersion
from .router import STICKY_HEADER, Routing
from .secret import token_hash
from .shadow import shadow_call
from .telemetry import Telemetry
from .versions import Versions

MAX_BODY_BYTES = 64 * 1024 * 1024
BATCH_MAX_REQUESTS = 32
FEEDBACK_RETRY_S = 2.0  # > metrics.FLUSH_S: every replica has pushed its predictions by then
_log = logging.getLogger("ray.serve")


def _registry() -> Any:
    from ..control.registry import handle

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
        self.name: str = config["name"]
        self.token_sha256: str | None = token_hash(config)  # from a secret when exported
        self._standalone: bool = config.get("standalone", False)  # no registry to report to
        self._max_batch_rows: int = config["max_batch_rows"]
        self._replica_id = serve.get_replica_context().replica_id.unique_id
        self._aggregator = _aggregator(self.name) if config.get("monitoring") else None
        self._telemetry: Telemetry | None = None
        if self._aggregator is not None:
            self._telemetry = Telemetry(self.name, self._replica_id, self._aggregator,
                                        config.get("log_sample_rate", 1.0),
                                        config.get("drift_thresholds", {}),
                                        config.get("log_redact", ()),
                                        config.get("log_retention_days", 30))  # fmt: skip
        self._versions = Versions(self.name, self._load, self._report)
        self._shadows: set[asyncio.Task[None]] = set()  # kept alive until they finish
        self._batcher = Batcher(self._run_batch, BATCH_MAX_REQUESTS)

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Serve what Serve pushes; keep the old versions if the new ones fail to load."""
        await self._versions.apply(ServeTarget.from_config(user_config))

    def _load(self, version: int, bento_tag: str) -> LoadedVersion:
        state = LoadedVersion.load(self.name, version, bento_tag, self._max_batch_rows,
                                   _registry_fetch)  # fmt: skip
        if self._telemetry is not None:
            self._telemetry.loaded(state)
        return state

    def _report(self, report: ReplicaReport) -> None:
        if self._standalone:  # exported: no control plane to report to
            return
        _registry().ack.remote(self.name, self._replica_id, report)

    def _authorized(self, header: str | None) -> bool:
        if self.token_sha256 is None:
            return True
        if not header or not header.startswith("Bearer "):
            return False
        digest = hashlib.sha256(header[7:].strip().encode()).hexdigest()
        return hmac.compare_digest(digest, self.token_sha256)

    async def __call__(self, request: Request) -> Response:
        table = self._versions.routing  # one table per request, even if it is replaced
        assert table is not None  # Serve routes requests only after reconfigure()
        # Serve's proxy gives every request an id (the client's x-request-id if it sent
        # one) and returns it in the x-request-id response header.
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.scope["jd_request_id"] = rid = rid[:128]
        if self._telemetry is None:
            return await self._route(request, table)
        started = time.perf_counter()
        response = await self._route(request, table)
        latency_ms = (time.perf_counter() - started) * 1000
        scope, tel = request.scope, self._telemetry
        state = scope.get("jd_state", table.primary)  # the version that answered
        rows = scope.get("jd_rows", 0)
        if not scope.get("jd_not_traffic"):  # probes, docs, scrapes, feedback: not traffic
            tel.recorder.record(state.version, response.status_code, latency_ms, rows,
                                scope.get("jd_error"))  # fmt: skip
        method = scope.get("jd_method")
        if method and tel.payloads is not None and tel.payloads.sampled():
            tel.payloads.log(rid, state.version, method, response.status_code, latency_ms, rows,
                             scope.get("jd_body", b""), bytes(response.body))  # fmt: skip
        return response

    async def _route(self, request: Request, table: Routing) -> Response:
        scope = request.scope
        path = scope["path"][len(scope.get("root_path", "")) :] or "/"
        state = table.primary
        headers = state.headers
        if not self._authorized(request.headers.get("authorization")):
            scope["jd_error"] = "Unauthorized"
            return _json(
                {"error": "missing or invalid bearer token: send 'Authorization: Bearer <token>'"},
                401,
                {"www-authenticate": "Bearer", **headers},
            )
        if path in ("/predict", "/predict_proba", "/feedback"):
            if request.method != "POST":
                return _json({"error": f"use POST for {path}"}, 405, headers)
            if path == "/feedback":
                scope["jd_not_traffic"] = True
                return await self._feedback(request, headers)
            return await self._predict(request, table, path[1:])
        if path == "/metrics" and self._aggregator is not None:
            scope["jd_not_traffic"] = True
            # Only this deployment's figures: its token must not reveal other deployments.
            text = await self._aggregator.prometheus.remote(self.name)
            return Response(text, media_type="text/plain; version=0.0.4", headers=headers)
        route = state.get_routes.get(path)
        if route is None:
            known = ["/predict", *state.get_routes]
            return _json({"error": f"no route {path}; routes: {known}"}, 404, headers)
        if request.method not in ("GET", "HEAD"):
            return _json({"error": f"use GET for {path}"}, 405, headers)
        scope["jd_not_traffic"] = True
        return Response(route[0], media_type=route[1], headers=headers)

    # Requests that arrive together share one model call; a zero wait means a lone
    # request never waits for company (bench: ~1.7x the throughput at c=32). Run by
    # self._batcher (batcher.py), which costs less per request than @serve.batch.
    @staticmethod
    def _run_batch(calls: list[tuple[LoadedVersion, str, Any]]) -> list[Any]:
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

    async def _predict(self, request: Request, table: Routing, method: str) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return _json({"error": f"body over {MAX_BODY_BYTES} bytes"}, 413, table.primary.headers)
        body = await request.body()
        scope = request.scope
        state = (
            table.pick(body, request.headers.get(STICKY_HEADER)) if table.split else table.primary
        )
        scope["jd_state"] = state
        headers, runtime = state.headers, state.runtime
        scope["jd_method"], scope["jd_body"] = method, body
        try:
            runtime.check_method(method)
            x = runtime.to_model_input(runtime.instances_from_body(body))
            scope["jd_rows"] = len(x)
            out = await self._batcher.submit((state, method, x))
            if isinstance(out, BaseException):
                raise out
            answer = runtime.answer(method, out)
            answer["request_id"] = scope["jd_request_id"]
            if method == "predict" and self._telemetry is not None:
                self._telemetry.prediction(state.version, x, out, scope["jd_request_id"])
        except state.input_error as err:
            scope["jd_error"] = type(err).__name__
            return _json({"error": str(err)}, err.status, headers)  # type: ignore[attr-defined]
        except Exception:
            scope["jd_error"] = "ModelError"
            _log.exception("prediction failed in %s v%s", self.name, state.version)
            return _json({"error": "the model failed on this input; see the replica log"}, 500)
        if table.shadowed():
            assert table.shadow is not None
            call = shadow_call(table.shadow, method, body, out, scope["jd_request_id"],
                               self._telemetry)  # fmt: skip
            task = asyncio.get_running_loop().create_task(call)
            self._shadows.add(task)
            task.add_done_callback(self._shadows.discard)
        return Response(state.dumps(answer), media_type="application/json", headers=headers)

    async def _feedback(self, request: Request, headers: dict[str, str]) -> Response:
        """``{"request_id": ..., "label": ...}`` or ``{"feedback": [such items]}``."""
        if self._aggregator is None:
            return _json({"error": "monitoring is off for this deployment"}, 404, headers)
        body = await request.body()
        request.scope["jd_method"], request.scope["jd_body"] = "feedback", body
        try:
            items = _feedback_items(json.loads(body))
        except ValueError as err:
            request.scope["jd_error"] = "InputError"
            return _json({"error": str(err)}, 400, headers)
        if self._telemetry is not None:
            # Push this replica's unflushed predictions first (one caller's actor calls run
            # in order), so feedback that follows its prediction at once finds it.
            self._telemetry.recorder.flush()
        result = await self._aggregator.feedback.remote(self.name, items)
        if result["unknown"]:
            # Other replicas push their predictions once a second: feedback that follows
            # its prediction at once may arrive first. Give the unknown ids one more chance.
            await asyncio.sleep(FEEDBACK_RETRY_S)
            unknown = set(result["unknown"])
            again = await self._aggregator.feedback.remote(
                self.name, [i for i in items if str(i["request_id"]) in unknown]
            )
            result = {"matched": result["matched"] + again["matched"], "unknown": again["unknown"],
                      "wrong_length": result["wrong_length"] + again["wrong_length"]}  # fmt: skip
        if not result["matched"]:
            request.scope["jd_error"] = "UnknownRequest"
            return _json({"error": "no prediction is known for these request ids "
                          f"(they are kept for the last 200,000 requests): {result['unknown'][:5]}",
                          **result}, 404, headers)  # fmt: skip
        return _json(result, 200, headers)


def _feedback_items(body: Any) -> list[dict[str, Any]]:
    items = body.get("feedback", [body]) if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise ValueError('send {"request_id": ..., "label": ...} or {"feedback": [...]}')
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "request_id" not in item or "label" not in item:
            raise ValueError(f"feedback item {i}: needs 'request_id' and 'label'")
    return items


def application(args: dict[str, Any]) -> Any:
    """Serve's application builder for a config file (``import_path`` + ``args``).

    ``args`` are the replica settings; the deployment's options and ``user_config`` come
    from the config's ``deployments`` entry (the KubeRay and container exports). With no
    control plane beside it, the metrics aggregator is made here (kept in memory only).
    """
    from .._ray import DEPLOYMENT

    if args.get("monitoring"):
        aggregator_handle(create=True)
    return serve.deployment(ModelReplica, name=DEPLOYMENT).bind(args)  # type: ignore[attr-defined]
