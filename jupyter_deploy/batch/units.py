"""Parquet input: one plain Ray task per read unit, manifests handed back in input order.

A Parquet job needs nothing of Ray Data: the driver plans the read units from the
footers (:func:`..sources.parts`), each task reads its unit, scores it and writes its
part file (:func:`..scorer.score_units`), and the driver stitches the parts in order.
Ray Data's streaming executor cost the driver ~15 ms of CPU a block (0.5 CPU-s of a
5M-row job, on a 2-core machine the scoring tasks' time); plain tasks cost ~2 ms.

At most ``workers`` tasks run at once; a new one starts as soon as any finishes, and
no more than :data:`LOOKAHEAD` units a worker run ahead of the oldest unfinished one,
so the parts waiting on disk for their turn stay few.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .records import BatchTarget

LOOKAHEAD = 4


def manifests(units: list[dict[str, Any]], target: BatchTarget, method: str, keep: list[str],
              max_rows: int, parts: tuple[str, str], wanted: list[str],
              workers: int) -> Iterator[list[dict[str, Any]]]:  # fmt: skip
    """Each unit's manifest rows (:func:`..sinks.write_part`), in the order of ``units``."""
    import ray

    from .scorer import score_units

    task = ray.remote(num_cpus=1)(score_units)
    running: dict[Any, int] = {}
    finished: dict[int, Any] = {}
    submitted = head = 0
    try:
        while head < len(units):
            while (len(running) < workers and submitted < len(units)
                   and submitted - head < LOOKAHEAD * workers):  # fmt: skip
                ref = task.remote([units[submitted]], target, method, keep, max_rows, parts,
                                  wanted)  # fmt: skip
                running[ref] = submitted
                submitted += 1
            if head in finished:
                yield ray.get(finished.pop(head))
                head += 1
                continue
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                finished[running.pop(ref)] = ref
    finally:  # a failed unit (or a failed write on the driver): stop the others
        left = [*running, *finished.values()]
        for ref in left:
            ray.cancel(ref)
        if left:
            ray.wait(left, num_returns=len(left), timeout=10)
