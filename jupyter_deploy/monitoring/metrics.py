"""Per-request metrics, recorded where requests are served.

Each replica counts its requests in memory (a few dict increments per request, so
serving is not slowed) and pushes the counts of the last second to the cluster-side
aggregator (:mod:`jupyter_deploy.aggregator`) once a second, even when idle, so the
aggregator also knows how many replicas are alive. Counts are exact: every request is
counted once, by the replica that answered it.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .importance import Importance
    from .segments import Segments

# Upper bounds (ms) of the latency histogram's buckets; the last one catches the rest.
LATENCY_BUCKETS_MS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 200, 500, 1000,
                      2000, 5000, math.inf)  # fmt: skip
FLUSH_S = 1.0
_log = logging.getLogger("ray.serve")


@dataclass
class Counts:
    """Requests counted over some interval: by status, errors by kind, latency histogram."""

    requests: int = 0
    rows: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latency: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS_MS))
    latency_sum_ms: float = 0.0

    def add(self, status: int, latency_ms: float, rows: int, error: str | None) -> None:
        self.requests += 1
        self.rows += rows
        self.by_status[str(status)] += 1
        if error:
            self.errors[error] += 1
        self.latency[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1
        self.latency_sum_ms += latency_ms

    def merge(self, other: Counts) -> None:
        """Add another interval's counts (a replica's push, another second)."""
        self.requests += other.requests
        self.rows += other.rows
        self.by_status.update(other.by_status)
        self.errors.update(other.errors)
        self.latency = [a + b for a, b in zip(self.latency, other.latency, strict=True)]
        self.latency_sum_ms += other.latency_sum_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "rows": self.rows,
            "by_status": dict(self.by_status),
            "errors": dict(self.errors),
            "latency": list(self.latency),
            "latency_sum_ms": self.latency_sum_ms,
        }

    def percentile(self, q: float) -> float | None:
        """Latency (ms) below which a fraction ``q`` of requests fell, from the histogram."""
        if not self.requests:
            return None
        rank = q * self.requests
        seen = 0
        lower = 0.0
        for upper, n in zip(LATENCY_BUCKETS_MS, self.latency, strict=True):
            if n and seen + n >= rank:
                if math.isinf(upper):
                    return lower
                return lower + (upper - lower) * (rank - seen) / n  # linear within the bucket
            seen += n
            lower = upper if not math.isinf(upper) else lower
        return lower


@dataclass
class Observed:
    """What a replica saw of one version since its last push, for drift and feedback."""

    predictions: dict[str, Any] = field(default_factory=dict)  # request id -> prediction
    inputs: dict[str, list[int]] | None = None  # bucket counts per feature
    outputs: dict[str, list[int]] | None = None  # bucket counts of the predictions
    segments: Segments | None = None  # counts per value of each segment column
    segment_rows: dict[str, list[list[str]]] = field(default_factory=dict)  # id -> rows' values
    importance: Importance | None = None  # |contribution| sums of the live rows explained


@dataclass
class ShadowCounts:
    """A shadow version's answers: rows answered, rows agreeing with the caller's answer."""

    requests: int = 0
    rows: int = 0
    agree: int = 0
    failed: int = 0

    def merge(self, other: ShadowCounts) -> None:
        self.requests += other.requests
        self.rows += other.rows
        self.agree += other.agree
        self.failed += other.failed


@dataclass
class Push:
    """One replica's second for one version: what the aggregator receives."""

    counts: Counts
    observed: Observed | None = None
    shadow: ShadowCounts | None = None  # this version answered as a shadow


class Recorder:
    """Counts one replica's requests per model version and pushes them every second."""

    def __init__(self, push: Callable[[int, Push], None], observations: Any = None) -> None:
        self._push = push
        self.observations = observations  # an Observations, drained with each flush
        self._windows: dict[int, Counts] = {}
        self._shadows: dict[int, ShadowCounts] = {}
        self._latest = 0  # the version an idle second is reported under
        self._task: asyncio.Task[None] | None = None

    def record(
        self,
        version: int,
        status: int,
        latency_ms: float,
        rows: int = 0,
        error: str | None = None,
    ) -> None:
        window = self._windows.get(version)
        if window is None:
            window = self._windows[version] = Counts()
        window.add(status, latency_ms, rows, error)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush_forever())

    def busy(self) -> bool:
        """Whether requests were counted since the last push (within the last second)."""
        return any(w.requests for w in list(self._windows.values()))

    def shadow(self, version: int, rows: int, agree: int, failed: bool) -> None:
        """A shadow answer of ``version`` (not traffic: it never reached a caller)."""
        counts = self._shadows.setdefault(version, ShadowCounts())
        counts.merge(ShadowCounts(1, rows, agree, int(failed)))

    def flush(self) -> None:
        # Idle seconds still push (empty counts) so the aggregator sees the replica alive.
        windows, self._windows = self._windows or {self._latest: Counts()}, {}
        shadows, self._shadows = self._shadows, {}
        self._latest = max(windows)
        for version in shadows.keys() - windows.keys():
            windows[version] = Counts()
        for version, window in windows.items():
            data = Push(window, shadow=shadows.get(version))
            try:
                data.observed = self.observations.drain(version) if self.observations else None
            except Exception:  # a drift summary must never cost the counts
                _log.warning("could not summarise inputs for drift", exc_info=True)
            try:
                self._push(version, data)
            except Exception:  # a missing aggregator must never break serving
                _log.warning("could not push metrics", exc_info=True)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            self.flush()
