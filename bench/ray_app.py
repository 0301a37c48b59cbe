"""Driver script: deploy the minimal hand-written Ray Serve app into the bench cluster.

Run as a subprocess (``python bench/ray_app.py --model m.pkl --name raw``) so that the
harness process never becomes a Ray driver itself: the "ours" row later connects to
another cluster, and a process can be the driver of one cluster only.

The deployment is the floor Ray Serve gives: a raw ``__call__`` that parses JSON, calls
``predict`` and returns JSON, with the settings found to matter (README.md): access log
off, ``log_to_driver=False``, ``max_ongoing_requests=64``, HAProxy ingress (set on the
cluster, see cluster.py); ``--batch`` adds ``@serve.batch`` with a zero batch wait.

It prints one JSON line of wall-clock timestamps (``time.time()``) so the harness can
split a deploy into import, connect, ``serve.start`` and ``serve.run``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path
from typing import Any

STAMPS: dict[str, float] = {"begin": time.time()}

import numpy as np  # noqa: E402  (timed: imports are part of a deploy's cost)
import ray  # noqa: E402
from ray import serve  # noqa: E402
from ray.serve.config import HTTPOptions  # noqa: E402
from ray.serve.schema import LoggingConfig  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402

STAMPS["imported"] = time.time()
NO_ACCESS_LOG = LoggingConfig(enable_access_log=False)


@serve.deployment(
    max_ongoing_requests=64,
    ray_actor_options={"num_cpus": 0.5},
    logging_config=NO_ACCESS_LOG,
)
class MinimalPredictor:
    """JSON ``{"instances": [[...]]}`` in, ``{"predictions": [...]}`` out."""

    def __init__(self, estimator: Any, batch: bool) -> None:
        self.estimator = estimator
        self.batch = batch

    async def __call__(self, request: Request) -> JSONResponse:
        rows = (await request.json())["instances"]
        if self.batch:
            predictions = await self.predict_batched(rows)
        else:
            predictions = self.estimator.predict(np.asarray(rows)).tolist()
        return JSONResponse({"predictions": predictions})

    # A zero wait takes whatever is queued when the previous batch finishes: under load
    # batches fill by themselves, and a lone request is not held back (a 2 ms wait cost
    # c=1 latency 4x here for no gain at c=32).
    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def predict_batched(self, requests: list[list[list[float]]]) -> list[list[int]]:
        """One ``predict`` for the rows of up to 32 concurrent requests."""
        sizes = [len(rows) for rows in requests]
        flat = np.asarray([row for rows in requests for row in rows])
        answers = self.estimator.predict(flat).tolist()
        out, start = [], 0
        for size in sizes:
            out.append(answers[start : start + size])
            start += size
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, help="pickled estimator")
    parser.add_argument("--name", required=True, help="app name and route prefix")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--batch", action="store_true", help="use @serve.batch")
    parser.add_argument("--delete", action="store_true", help="delete the app instead")
    args = parser.parse_args()
    if args.delete:
        ray.init(log_to_driver=False)
        serve.delete(args.name)
        return

    estimator = pickle.loads(args.model.read_bytes())
    ray.init(log_to_driver=False)  # address from RAY_ADDRESS, set by the harness
    STAMPS["connected"] = time.time()
    serve.start(
        http_options=HTTPOptions(host="127.0.0.1", port=args.port),
        logging_config=NO_ACCESS_LOG,
    )
    STAMPS["serve_started"] = time.time()
    # @serve.deployment turns the class into a Deployment, which mypy cannot see.
    app = MinimalPredictor.bind(estimator, args.batch)  # type: ignore[attr-defined]
    # Tells the harness the deploy proper starts now (it starts redeploy load on this).
    print("SERVE_RUN", flush=True)
    # serve.run returns once the app is RUNNING; with HAProxy a *redeploy* returns only
    # after the old replica's drain period (RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S).
    serve.run(app, name=args.name, route_prefix=f"/{args.name}", blocking=False)
    STAMPS["running"] = time.time()
    print("STAMPS " + json.dumps(STAMPS), flush=True)


if __name__ == "__main__":
    main()
