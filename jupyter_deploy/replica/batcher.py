"""Zero-wait batching of model calls: what queued up while the loop was busy runs together.

A request never waits for company that is not already on its way: its call runs a loop
turn later with every call submitted meanwhile, then one turn later again for as long as
each turn brings more calls (up to ``max_size`` per batch, :data:`MAX_TURNS` turns at
most). A lone request so pays two loop turns, a few microseconds.

Why more than one turn: on a busy replica the requests read while the previous batch ran
reach ``submit`` over several consecutive turns (each takes a few through uvicorn and
Serve). Flushing at the first turn split them into batches of one, and that fed itself:
answers left one by one, so the next requests came back one by one. On the loaded 2-core
machine a replica was seen stuck there for seconds at a time, every batch one request,
at a third of its throughput; waiting while calls keep arriving doubled the mean batch
and gave 1.25x the req/s at c=32, paired (docs/benchmarks.md, "Episodes").

This replaces ``@serve.batch(batch_wait_timeout_s=0)``, which does the same with an
``asyncio.Queue``, a background task, ``wait_for`` with a zero timeout, two more tasks and
six Ray metrics per batch: 0.3-0.5 ms of a 1-row request's time in the replica
(``bench/breakdown.py``, docs/benchmarks.md). The batch sizes and what a failed batch
does are unchanged; Serve's ``serve_batch_*`` metrics are no longer exported (the
replica's own request metrics still count every request).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from .warning_filters import keep_compact

MAX_TURNS = 8  # loop turns a batch may wait while calls keep joining it


class Batcher:
    """Collects calls submitted over consecutive loop turns; runs batches of ``max_size``.

    ``run(items)`` gets the items of one batch and returns one result per item, in order;
    an exception it raises becomes every item's result (``run`` decides per item whether
    a failure is an exception to return rather than raise).
    """

    def __init__(self, run: Callable[[list[Any]], list[Any]], max_size: int) -> None:
        self._run = run
        self.max_size = max_size
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self._scheduled = False
        self._seen = 0  # calls pending at the last turn's look
        self._turns = 0  # turns waited so far for this batch

    async def submit(self, item: Any) -> Any:
        """The result of ``item``'s call, made in a batch at the loop's next turn."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((item, future))
        if not self._scheduled:
            self._scheduled, self._seen, self._turns = True, len(self._pending), 0
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        waiting = len(self._pending)
        growing = self._turns == 0 or waiting > self._seen
        if growing and waiting < self.max_size and self._turns < MAX_TURNS:
            # The first look comes before the calls this turn brings (callbacks run in the
            # order they were scheduled), so it always waits one turn; after that, one
            # more turn for as long as calls keep joining: more requests are on their way
            # through the loop. A turn that brings none runs the batch.
            self._seen, self._turns = waiting, self._turns + 1
            asyncio.get_running_loop().call_soon(self._flush)
            return
        self._scheduled = False
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), self.max_size):
            # A caller that went away (client disconnect) is not computed for.
            batch = [(i, f) for i, f in pending[start : start + self.max_size] if not f.done()]
            if not batch:
                continue
            try:
                results = self._run([item for item, _ in batch])
            except Exception as exc:
                results = [exc] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


def run_by_version(calls: list[tuple[Any, str, Any]]) -> list[Any]:
    """Model calls ``(loaded version, method, model input)``: one call per version and
    method (a swap may happen between two requests), each result or exception in order.

    If one request's data fails the merged call, each runs alone, so only it fails.
    """
    keep_compact()  # the model's warning filters stay few (warning_filters.py)
    results: list[Any] = [None] * len(calls)
    for key in {(id(state), method) for state, method, _ in calls}:
        idx = [i for i, (st, m, _) in enumerate(calls) if (id(st), m) == key]
        runtime, method = calls[idx[0]][0].runtime, calls[idx[0]][1]
        inputs = [calls[i][2] for i in idx]
        try:
            out = runtime.run(method, inputs[0] if len(inputs) == 1 else runtime.concat(inputs))
        except Exception:
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
