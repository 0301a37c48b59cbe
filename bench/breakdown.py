"""Where a request's time goes inside a replica: each step of the hot path, timed alone.

``python bench/breakdown.py [--calls 2000]`` builds the bench's two models (the iris
``StandardScaler + LogisticRegression`` pipeline and the 200-tree forest, both fit on a
DataFrame), wraps each in the Bento runtime exactly as a replica loads it, and times, in
this process and with no Ray running, every step the replica's ``__call__`` takes for a
records body of 1 and of 32 rows: auth, reading the body, JSON parsing, validation and
building the model input, the batching queue, ``predict``, the answer and its JSON, and
the monitoring recorders (counts, drift observations, payload log) and their background
work per request (drift summaries, the payload log's encoding). ``whole __call__`` is
the real ``ModelReplica.__call__`` on a real Starlette request, so the steps can be
checked against their sum. Medians of ``--calls`` calls, in microseconds, as JSON and as
a Markdown table.

What the replica does not see (the client socket, HAProxy, uvicorn, Serve's own request
handling) is measured from the outside by ``bench/peers.py``: the end-to-end p50 at
c=1 minus the whole ``__call__``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer_models import MODELS, fit, records_body
from ray import serve

from jupyter_deploy.replica.batcher import Batcher

TOKEN = "bench-breakdown-token"


class _Remote:
    """Stands in for a Ray actor method: ``.remote(...)`` does nothing, as a push's cost
    in the replica is only the call's submission (measured in the cluster, not here)."""

    def remote(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Aggregator:
    push = register = feedback = prometheus = _Remote()


def _replica(model: Any, sample: Any, monitoring: bool) -> Any:
    """A ``ModelReplica`` built without Serve, holding the runtime a replica would load."""
    from jupyter_deploy._bento import runtime as rt
    from jupyter_deploy.build.capture import infer_schema
    from jupyter_deploy.replica import app
    from jupyter_deploy.replica.loaded import LoadedVersion
    from jupyter_deploy.replica.router import Routing
    from jupyter_deploy.replica.telemetry import Telemetry

    schema = infer_schema(model, sample, allow_nan=False, label="model")
    runtime = rt.ModelRuntime(model, schema, 10_000)
    if hasattr(runtime, "serve_arrays"):  # as LoadedVersion.load does (older checkouts: no)
        runtime.serve_arrays()
    state = LoadedVersion("bench", 1, "bench:1", runtime, rt.InputError, rt.dumps,
                          {"x-model-version": "1"}, {}, "jd_runtime", Path("."), None)  # fmt: skip
    # serve.batch asks the replica context for max_ongoing_requests when its queue is made.
    config = type("C", (), {"max_ongoing_requests": 64})()
    app.serve.get_replica_context = lambda: type("R", (), {"_deployment_config": config})()
    from jupyter_deploy.control.keys import SCOPES, Grant
    from jupyter_deploy.replica.batcher import run_by_version
    from jupyter_deploy.replica.keyring import Keyring
    from jupyter_deploy.replica.shadow import ShadowQueue

    replica = object.__new__(app.ModelReplica)
    replica.name, replica._standalone, replica._max_batch_rows = "bench", True, 10_000
    replica._keys = Keyring(True)
    replica._keys.update((Grant(hashlib.sha256(TOKEN.encode()).hexdigest(), "k", SCOPES),))
    replica._replica_id, replica._monitoring = "r1", monitoring
    replica._batcher = Batcher(run_by_version, app.BATCH_MAX_REQUESTS)
    replica._aggregator = _Aggregator() if monitoring else None
    replica._telemetry = None
    if monitoring:
        replica._telemetry = Telemetry("bench", "r1", _Aggregator(), 1.0, {}, (), 30)
        replica._telemetry.payloads._send = lambda batch, dropped: None
        replica._telemetry.payloads._done = lambda ref: True
    replica._shadows = ShadowQueue(replica._telemetry)
    versions = type("V", (), {})()
    versions.routing = Routing("k", state)
    replica._versions = versions
    return replica, state


class _ServeBatched:
    """The batching queue alone: a call of a batch function that does nothing."""

    async def call(self) -> None:
        await self._noop(None)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def _noop(self, items: list[Any]) -> list[Any]:
        return items


class _Batched:
    def __init__(self) -> None:
        self.batcher = Batcher(lambda items: items, 32)

    async def call(self) -> None:
        await self.batcher.submit(None)


_SERVE_BATCH, _BATCHER = _ServeBatched(), _Batched()


def _request(body: bytes) -> Any:
    from starlette.requests import Request

    sent = [False]

    async def receive() -> dict[str, Any]:
        if sent[0]:
            return {"type": "http.disconnect"}
        sent[0] = True
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"authorization", f"Bearer {TOKEN}".encode()),
               (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]  # fmt: skip
    scope = {"type": "http", "method": "POST", "path": "/predict", "root_path": "",
             "headers": headers, "query_string": b""}  # fmt: skip
    return Request(scope, receive)


async def _time_async(fn: Any, calls: int) -> float:
    samples = []
    for _ in range(calls):
        t = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e6


def _time(fn: Any, calls: int) -> float:
    samples = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1e6


async def steps(
    model_name: str, rows: int, calls: int, monitoring: bool = True
) -> dict[str, float]:
    """Median microseconds of each step of the replica's hot path."""
    model, sample = fit(model_name)
    replica, state = _replica(model, sample, monitoring)
    rt = state.runtime
    body = records_body(sample, rows).encode()
    instances = rt.instances_from_body(body)
    x = rt.to_model_input(instances)
    out = rt.run("predict", x)
    answer = rt.answer("predict", out)
    header = f"Bearer {TOKEN}"
    result: dict[str, float] = {}
    result["auth (sha256 + lookup)"] = _time(lambda: replica._keys.check(header, "predict"), calls)

    async def read_body() -> None:
        await _request(body).body()

    result["request object + body read"] = await _time_async(read_body, calls)
    result["JSON parse"] = _time(lambda: rt.instances_from_body(body), calls)
    result["validate + build model input"] = _time(lambda: rt.to_model_input(instances), calls)
    result["predict"] = _time(lambda: rt.run("predict", x), calls)

    result["batching queue: @serve.batch (before)"] = await _time_async(_SERVE_BATCH.call, calls)
    result["batching queue: Batcher (now)"] = await _time_async(_BATCHER.call, calls)
    result["answer + JSON dump"] = _time(lambda: state.dumps(rt.answer("predict", out)), calls)
    if replica._telemetry is not None:
        tel = replica._telemetry
        resp = state.dumps(answer)

        def record() -> None:
            tel.recorder.record(1, 200, 1.0, rows, None)

        result["metrics: count + histogram"] = _time(record, calls)
        result["drift/feedback: keep input + output"] = _time(
            lambda: tel.prediction(state, x, out, "rid"), calls
        )
        rid = "0" * 32  # as long as the uuid4 hex a request gets
        result["payload log: sample + buffer"] = _time(
            lambda: tel.payloads.log(rid, 1, "predict", 200, 1.0, rows, body, resp), calls
        )
        logged = len(tel.payloads._buffer)  # what those calls queued, shipped in one batch
        began = time.perf_counter()
        tel.payloads.ship()  # decode, redact (none here), encode the lines, hand them over
        result["payload log: encode + ship per request (background, 2/s)"] = (
            (time.perf_counter() - began) / logged * 1e6
        )
        # The background work each request adds once a second (drift summaries below).
        tel.observations._seen.clear()

    async def whole() -> None:
        resp = await replica(_request(body))
        assert resp.status_code == 200, resp.body

    result["whole __call__ (in process)"] = await _time_async(whole, calls)
    if replica._telemetry is not None:
        tel = replica._telemetry
        n = len(tel.observations._seen.get(1, type("S", (), {"ids": []})()).ids) or 1
        began = time.perf_counter()
        tel.observations.drain(1)
        result["drift summary per request (background, 1/s)"] = (
            (time.perf_counter() - began) / n * 1e6
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    table: dict[str, dict[str, float]] = {}

    async def every() -> None:  # one event loop: serve.batch's queue is bound to its loop
        for name in MODELS:
            for rows in (1, 32):
                table[f"{name} {rows}-row"] = await steps(name, rows, args.calls)

    asyncio.run(every())
    if args.out:
        args.out.write_text(json.dumps(table, indent=2))
    cols = list(table)
    print("| step (µs, median) | " + " | ".join(cols) + " |")
    print("| --- |" + " --- |" * len(cols))
    for step in table[cols[0]]:
        vals = " | ".join(f"{table[c].get(step, float('nan')):.1f}" for c in cols)
        print(f"| {step} | {vals} |")


if __name__ == "__main__":
    main()
