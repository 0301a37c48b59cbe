"""Zero-wait batching of model calls: what queued up while the loop was busy runs together.

A request never waits for company: its call is run at the event loop's next turn, with
every other call that was submitted before that turn (up to ``max_size`` per batch). On a
busy replica that is every request whose body was read while the previous batch ran, so
requests share one ``predict`` under load and a lone request pays one loop turn.

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


class Batcher:
    """Collects calls submitted in one loop turn and runs them as batches of ``max_size``.

    ``run(items)`` gets the items of one batch and returns one result per item, in order;
    an exception it raises becomes every item's result (``run`` decides per item whether
    a failure is an exception to return rather than raise).
    """

    def __init__(self, run: Callable[[list[Any]], list[Any]], max_size: int) -> None:
        self._run = run
        self.max_size = max_size
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self._scheduled = False

    async def submit(self, item: Any) -> Any:
        """The result of ``item``'s call, made in a batch at the loop's next turn."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
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
