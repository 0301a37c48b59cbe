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
from .batcher import Batcher, run_by_version
from .explaining import Explaining
from .keyring import OPEN_ROUTES, REPORT_S, Keyring, scope_of
from .loaded import LoadedVersion
from .router import STICKY_HEADER, Routing
from .sampling import ImportanceSampler
from .secret import token_hash
from .shadow import ShadowQueue
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
        # Key hashes come with each target; an export's one from a secret (replica/secret.py).
        self._keys = Keyring(bool(config.get("auth")), token_hash(config))
        self._standalone: bool = config.get("standalone", False)  # no registry to report to
        self._max_batch_rows: int = config["max_batch_rows"]
        self._monitoring = bool(config.get("monitoring"))
        self._key_reports: asyncio.Task[None] | None = None
        self._replica_id = serve.get_replica_context().replica_id.unique_id
        self._aggregator = _aggregator(self.name) if config.get("monitoring") else None
        self._telemetry: Telemetry | None = None
        if self._aggregator is not None:
            self._telemetry = Telemetry(self.name, self._replica_id, self._aggregator,
                                        config.get("log_sample_rate", 1.0),
                                        config.get("drift_thresholds", {}),
                                        config.get("log_redact", ()),
                                        config.get("log_retention_days", 30),
                                        config.get("segments", ()),
                                        config.get("fairness"))  # fmt: skip
        self._versions = Versions(self.name, self._load, self._report)
        self._shadows = ShadowQueue(self._telemetry)
        tel = self._telemetry
        self._explaining = Explaining(self.name, config.get("explain_timeout_s", 5.0),
                                      tel.recorder.busy if tel else lambda: False,
                                      MAX_BODY_BYTES)  # fmt: skip
        if tel is not None and config.get("importance_rows_per_s", 0) > 0:
            tel.sample_importance(ImportanceSampler(config["importance_rows_per_s"],
                                                    self._explaining))  # fmt: skip
        # Requests that arrive together share one model call; a zero wait means a lone
        # request never waits for company (bench: ~1.7x the throughput at c=32).
        self._batcher = Batcher(run_by_version, BATCH_MAX_REQUESTS)

    async def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Serve what Serve pushes; keep the old versions if the new ones fail to load.

        The keys apply at once (a revoke must not wait for a Bento to load)."""
        target = ServeTarget.from_config(user_config)
        self._keys.update(target.keys)
        if self._key_reports is None and self._keys.auth and not self._standalone:
            self._key_reports = asyncio.get_running_loop().create_task(self._report_keys())
        await self._versions.apply(target)

    async def _report_keys(self) -> None:
        """Each key's last use, to the registry in one call every few seconds (if used)."""
        while True:
            await asyncio.sleep(REPORT_S)
            used = self._keys.drain()
            if used:
                try:
                    _registry().keys_used.remote(self.name, used)
                except Exception:  # a restarting registry: this batch is lost, not the replica
                    _log.warning("could not report key use of %s", self.name, exc_info=True)

    def _load(self, version: int, bento_tag: str) -> LoadedVersion:
        state = LoadedVersion.load(self.name, version, bento_tag, self._max_batch_rows,
                                   _registry_fetch, self._monitoring, self._keys.auth)  # fmt: skip
        if self._telemetry is not None:
            self._telemetry.loaded(state)
        return state

    def _report(self, report: ReplicaReport) -> None:
        if self._standalone:  # exported: no control plane to report to
            return
        _registry().ack.remote(self.name, self._replica_id, report)

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
        method = request.method
        if path in OPEN_ROUTES:  # probes: no key, and nothing but "ok" (not even the version)
            scope["jd_not_traffic"] = True
            if method not in ("GET", "HEAD"):
                return _json({"error": f"use GET for {path}"}, 405, {"allow": "GET, HEAD"})
            return Response(b"ok", media_type="text/plain")
        refused = self._keys.check(request.headers.get("authorization"), scope_of(path))
        if refused is not None and refused[0] == 401:
            scope["jd_error"] = "Unauthorized"
            return _json({"error": refused[1]}, 401, {"www-authenticate": "Bearer"})
        state = table.primary
        headers = state.headers
        allowed = self._methods(path, state)
        if allowed is None:
            known = [f"/{m}" for m in state.runtime.methods] + ["/explain", *state.get_routes]
            return _json({"error": f"no route {path}; routes: {known}"}, 404, headers)
        if method not in allowed:
            return _json({"error": f"use {' or '.join(allowed)} for {path}"}, 405,
                         {**headers, "allow": ", ".join(allowed)})  # fmt: skip
        if refused is not None:
            scope["jd_error"] = "Forbidden"
            return _json({"error": refused[1]}, refused[0], headers)
        if method == "POST":
            if path == "/feedback":
                scope["jd_not_traffic"] = True
                return await self._feedback(request, headers)
            if path == "/explain":  # the predict scope; runs in its own thread
                return await self._explaining(request, table)
            return await self._predict(request, table, path[1:])
        scope["jd_not_traffic"] = True
        if path == "/metrics":
            # Only this deployment's figures: its key must not reveal other deployments.
            assert self._aggregator is not None
            text = await self._aggregator.prometheus.remote(self.name)
            return Response(text, media_type="text/plain; version=0.0.4", headers=headers)
        body, media = state.get_routes[path]
        return Response(body, media_type=media, headers=headers)

    def _methods(self, path: str, state: LoadedVersion) -> tuple[str, ...] | None:
        """The methods route ``path`` answers (None: no such route)."""
        if (
            path[1:] in state.runtime.methods
            or path == "/explain"
            or (path == "/feedback" and self._monitoring)
        ):
            return ("POST",)
        if path in state.get_routes or (path == "/metrics" and self._aggregator is not None):
            return ("GET", "HEAD")
        return None

    async def _predict(self, request: Request, table: Routing, method: str) -> Response:
        body = await _read_body(request)
        if body is None:
            return _json({"error": f"body over {MAX_BODY_BYTES} bytes"}, 413, table.primary.headers)
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
                self._telemetry.prediction(state, x, out, scope["jd_request_id"])
        except state.input_error as err:
            scope["jd_error"] = type(err).__name__
            return _json({"error": str(err)}, err.status, headers)  # type: ignore[attr-defined]
        except Exception:
            scope["jd_error"] = "ModelError"
            _log.exception("prediction failed in %s v%s", self.name, state.version)
            return _json({"error": "the model failed on this input; see the replica log"}, 500)
        if table.shadowed():
            assert table.shadow is not None
            self._shadows.put(table.shadow, method, body, out, scope["jd_request_id"])
        return Response(state.dumps(answer), media_type="application/json", headers=headers)

    async def _feedback(self, request: Request, headers: dict[str, str]) -> Response:
        """``{"request_id": ..., "label": ...}`` or ``{"feedback": [such items]}``."""
        if self._aggregator is None:
            return _json({"error": "monitoring is off for this deployment"}, 404, headers)
        body = await _read_body(request)
        if body is None:
            return _json({"error": f"body over {MAX_BODY_BYTES} bytes"}, 413, headers)
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


async def _read_body(request: Request) -> bytes | None:
    """The request's body, or None past :data:`MAX_BODY_BYTES` (declared or chunked): a
    chunked body is read only up to the limit, never whole first."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


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
