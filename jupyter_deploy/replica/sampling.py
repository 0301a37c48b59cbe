"""Live global importance: a few rows of predict traffic explained every second.

The predict path only offers each request's model input to a reservoir (a counter and,
now and then, one list slot: no copy, no model call); once per :attr:`interval_s` the
reservoir's rows, at most ``rows_per_s`` per second, go to the replica's explain thread
as spare work (:meth:`~.explaining.Explaining.spare`): it runs only when no caller's
explanation is waiting and its own small share of time allows, and is dropped
otherwise, so callers' explanations and predictions come first. The sums of
|contribution| per column wait here, per version, until the next metrics push takes
them (:meth:`take`, from :class:`~.observations.Observations`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any

from ..monitoring.importance import Importance
from .loaded import LoadedVersion

if TYPE_CHECKING:
    from .explaining import Explaining

_log = logging.getLogger("ray.serve")


class ImportanceSampler:
    """Reservoir-samples requests; explains their rows in the explain thread."""

    def __init__(self, rows_per_s: float, explaining: Explaining) -> None:
        self.interval_s = max(1.0, 1.0 / rows_per_s)  # below 1 row/s: one row per interval
        self.rows = max(1, round(rows_per_s * self.interval_s))
        self._explaining = explaining
        self._held: list[tuple[LoadedVersion, Any]] = []
        self._seen = 0
        self._next = time.monotonic() + self.interval_s
        self._busy = False  # a batch is in the explain thread (or queued for it)
        self._done: dict[int, Importance] = {}
        self._lock = threading.Lock()  # _done: filled in the thread, taken on the loop

    def offer(self, state: LoadedVersion, x: Any) -> None:
        """One predict request's validated input (on the event loop: keep it cheap)."""
        self._seen += 1
        if len(self._held) < self.rows:
            self._held.append((state, x))
        else:
            j = random.randrange(self._seen)  # every request equally likely to be kept
            if j < self.rows:
                self._held[j] = (state, x)
        now = time.monotonic()
        if now >= self._next and not self._busy:
            self._next = now + self.interval_s
            batch, self._held, self._seen = self._held, [], 0
            self._busy = True
            self._explaining.spare(self._explain, batch, self._finished)

    def _finished(self) -> None:
        self._busy = False

    def _explain(self, batch: list[tuple[LoadedVersion, Any]], deadline: float) -> None:
        """In the explain thread: each version's sampled rows, explained and summed."""
        by_version: dict[int, tuple[LoadedVersion, list[Any]]] = {}
        for state, x in batch:
            by_version.setdefault(state.version, (state, []))[1].append(x)
        for state, inputs in by_version.values():
            x = state.runtime.concat(inputs) if len(inputs) > 1 else inputs[0]
            if len(x) > self.rows:
                pick = sorted(random.sample(range(len(x)), self.rows))
                x = x.iloc[pick] if hasattr(x, "iloc") else x[pick]
            explanation = self._explaining.explainer(state).explain(x, deadline)
            got = Importance.of(explanation.contributions, explanation.output)
            with self._lock:
                self._done.setdefault(state.version, Importance()).merge(got)

    def take(self, version: int) -> Importance | None:
        """The sums explained for ``version`` since the last take (for the metrics push)."""
        with self._lock:
            return self._done.pop(version, None)
