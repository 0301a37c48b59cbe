"""The cluster-side metrics aggregator: one detached actor beside the registry.

Replicas push their per-second counts here (:mod:`jupyter_deploy.metrics`); every reader
(a notebook monitor, another kernel, the CLI, the panel) asks it, so all see the same
numbers, and they outlive any kernel. It keeps exact totals per deployment and a
per-second series of the last :data:`KEEP_S` seconds for rates and charts.

The registry saves what changed every few seconds (:meth:`Aggregator.export`) and hands
it back after a restart (:meth:`Aggregator.restore`), as a :class:`Saved`: the counters
whole, and of the requests remembered for feedback only the chunks not saved yet
(:mod:`.remembered`).
"""

from __future__ import annotations

import pickle
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .metrics import LATENCY_BUCKETS_MS, Counts, Push, ShadowCounts

if TYPE_CHECKING:
    from .quality import Quality

AGGREGATOR_NAME = "jupyter_deploy_metrics"
KEEP_S = 900


@dataclass
class _Second:
    at: int
    counts: Counts = field(default_factory=Counts)
    replicas: set[str] = field(default_factory=set)
    by_version: dict[int, Counts] = field(default_factory=dict)  # the same counts, split

    def __setstate__(self, state: dict[str, Any]) -> None:  # seconds saved before by_version
        self.__dict__.update({"by_version": {}, **state})


@dataclass
class Saved:
    """The aggregator's state as the registry stores it, per deployment name."""

    counters: dict[str, bytes] = field(default_factory=dict)  # the pickled _Deployment
    chunks: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)  # remembered
    first: dict[str, int] = field(default_factory=dict)  # oldest chunk kept (older: dropped)


@dataclass
class BatchCounts:
    """Batch jobs of a deployment (``Deployment.batch``), counted apart from live traffic."""

    jobs: int = 0
    rows: int = 0
    failed: int = 0
    seconds: float = 0.0
    last: float | None = None  # when the last job ended

    def merge(self, other: BatchCounts) -> None:
        self.jobs += other.jobs
        self.rows += other.rows
        self.failed += other.failed
        self.seconds += other.seconds
        self.last = max(filter(None, (self.last, other.last)), default=None)


@dataclass
class _Deployment:
    total: Counts = field(default_factory=Counts)
    by_version: dict[str, Counts] = field(default_factory=dict)
    seconds: deque[_Second] = field(default_factory=lambda: deque(maxlen=KEEP_S))
    quality: Quality | None = None  # drift and feedback; made when a replica registers
    shadow: dict[str, ShadowCounts] = field(default_factory=dict)  # answers as a shadow
    batch: BatchCounts = field(default_factory=BatchCounts)  # apart from traffic

    def __setstate__(self, state: dict[str, Any]) -> None:  # saved before batch counts
        self.__dict__.update({"batch": BatchCounts(), **state})


def _point(second: _Second) -> dict[str, Any]:
    """One second of a deployment's series, for charts."""
    return {
        "t": second.at,
        "requests": second.counts.requests,
        "replicas": len(second.replicas),
        "p95_ms": second.counts.percentile(0.95),
    }


class Aggregator:
    """Actor body: pushes from replicas in, snapshots and Prometheus text out."""

    def __init__(self) -> None:
        self._deployments: dict[str, _Deployment] = {}
        self._dirty: set[str] = set()  # changed since the last export()

    def push(self, name: str, version: int, replica: str, data: Push) -> None:
        dep = self._deployments.setdefault(name, _Deployment())
        if data.counts.requests or data.observed is not None or data.shadow is not None:
            self._dirty.add(name)  # an idle second changes nothing worth saving
        now = int(time.time())
        if not dep.seconds or dep.seconds[-1].at != now:
            dep.seconds.append(_Second(now))
        second = dep.seconds[-1]
        second.counts.merge(data.counts)
        second.by_version.setdefault(version, Counts()).merge(data.counts)
        second.replicas.add(replica)
        dep.total.merge(data.counts)
        dep.by_version.setdefault(str(version), Counts()).merge(data.counts)
        if data.observed is not None and dep.quality is not None:
            dep.quality.push(version, data.observed)
        if data.shadow is not None:
            dep.shadow.setdefault(str(version), ShadowCounts()).merge(data.shadow)

    def batch(self, name: str, rows: int, failed: int, seconds: float) -> None:
        """A batch job of ``name`` ended: ``rows`` scored (``failed`` of them refused)."""
        job = BatchCounts(1, rows, failed, seconds, time.time())
        self._deployments.setdefault(name, _Deployment()).batch.merge(job)
        self._dirty.add(name)

    def forget(self, name: str) -> None:
        self._deployments.pop(name, None)
        self._dirty.discard(name)

    # -- durability: the control plane saves these every few seconds, restores at start ---
    def export(self, everything: bool = False) -> Saved:
        """The deployments changed since the last export (or all), to save."""
        names = set(self._deployments) if everything else self._dirty & set(self._deployments)
        self._dirty.clear()
        out = Saved()
        for name in names:
            dep = self._deployments[name]
            if dep.quality is not None:  # first: it closes the open chunk the counters name
                out.chunks[name], out.first[name] = dep.quality.memory.unsaved()
            out.counters[name] = pickle.dumps(dep)
        return out

    def restore(self, state: Saved) -> list[str]:
        """Take saved state back after a restart; counts pushed meanwhile are added to it."""
        restored = []
        for name, blob in state.counters.items():
            saved: _Deployment = pickle.loads(blob)
            if saved.quality is not None:
                saved.quality.memory.load(state.chunks.get(name, []))
            current = self._deployments.get(name)
            if current is not None:  # replicas pushed first: keep both sides' counts
                saved.total.merge(current.total)
                for version, counts in current.by_version.items():
                    saved.by_version.setdefault(version, Counts()).merge(counts)
                saved.seconds.extend(current.seconds)
                saved.batch.merge(current.batch)
            self._deployments[name] = saved
            restored.append(name)
        return restored

    def _quality(self, name: str) -> Quality:
        from .quality import Quality

        dep = self._deployments.setdefault(name, _Deployment())
        if dep.quality is None:
            dep.quality = Quality()
        return dep.quality

    def register(self, name: str, version: int, reference: dict[str, Any]) -> None:
        """A replica loaded ``version``: its reference profiles, task and drift thresholds."""
        self._quality(name).register(version, reference)
        self._dirty.add(name)

    def feedback(self, name: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        """True labels for earlier requests, by request id (see :mod:`jupyter_deploy.quality`)."""
        self._dirty.add(name)
        return self._quality(name).feedback(items)

    def quality(self, name: str, window_s: int = 300, version: int | None = None) -> dict[str, Any]:
        """Input and prediction drift and accuracy of a version (default: the live one)."""
        return self._quality(name).report(window_s, version)

    def versions(self, name: str, window_s: int, versions: list[int]) -> dict[str, Any]:
        """What :func:`~.compare.compare` needs of ``versions`` over the last ``window_s``."""
        quality = self._quality(name)
        dep = self._deployments.get(name, _Deployment())
        return {
            "counts": self.by_version(name, time.time() - window_s),
            "quality": {v: quality.report(window_s, v) for v in versions},
            "shadow": {int(v): c for v, c in dep.shadow.items()},
        }

    def by_version(self, name: str, since: float) -> dict[int, Counts]:
        """Each version's counts over the seconds from ``since`` (a canary's interval)."""
        out: dict[int, Counts] = {}
        dep = self._deployments.get(name)
        for second in dep.seconds if dep is not None else ():
            if second.at >= since + 1:  # a push carries the second before it
                for version, counts in second.by_version.items():
                    out.setdefault(version, Counts()).merge(counts)
        return out

    def segments(self, name: str, window_s: int = 300) -> dict[str, Any]:
        """Requests, predictions, accuracy and drift per segment value, and their gaps."""
        return self._quality(name).segments(window_s)

    def snapshot(self, name: str, window_s: int = 60) -> dict[str, Any]:
        """Totals, and over the last ``window_s`` seconds: rate, latency, errors, series."""
        dep = self._deployments.get(name, _Deployment())
        now = int(time.time())
        recent = [s for s in dep.seconds if s.at > now - window_s]
        window = Counts()
        for s in recent:
            window.merge(s.counts)
        span = max(1, min(window_s, now - recent[0].at + 1)) if recent else window_s
        errors = sum(n for code, n in window.by_status.items() if int(code) >= 400)
        return {
            "name": name,
            "total_requests": dep.total.requests,
            "total_by_status": dict(dep.total.by_status),
            "by_version": {v: c.requests for v, c in dep.by_version.items()},
            "window_s": window_s,
            "requests": window.requests,
            "rate_rps": window.requests / span,
            "error_rate": errors / window.requests if window.requests else 0.0,
            "by_status": dict(window.by_status),
            "errors": dict(window.errors),
            "latency_ms": {f"p{int(q * 100)}": window.percentile(q) for q in (0.5, 0.95, 0.99)},
            "series": [_point(s) for s in recent],
            "shadow": {v: asdict(c) for v, c in dep.shadow.items()},
            "batch": asdict(dep.batch),
        }

    def _selected(self, only: str | None) -> list[tuple[str, _Deployment]]:
        return sorted((n, d) for n, d in self._deployments.items() if only in (None, n))

    def prometheus(self, only: str | None = None) -> str:
        """Totals in the Prometheus text exposition format: every deployment, or ``only``."""
        requests = "jupyter_deploy_requests_total"
        latency = "jupyter_deploy_request_latency_ms"
        lines = [
            f"# HELP {requests} Requests answered, by HTTP status.",
            f"# TYPE {requests} counter",
        ]
        for name, dep in self._selected(only):
            for status, n in sorted(dep.total.by_status.items()):
                lines.append(f'{requests}{{deployment="{name}",status="{status}"}} {n}')
        lines += [
            f"# HELP {latency} Request latency in the replica.",
            f"# TYPE {latency} histogram",
        ]
        for name, dep in self._selected(only):
            cumulative = 0
            for upper, n in zip(LATENCY_BUCKETS_MS, dep.total.latency, strict=True):
                cumulative += n
                le = "+Inf" if upper == float("inf") else f"{upper:g}"
                lines.append(f'{latency}_bucket{{deployment="{name}",le="{le}"}} {cumulative}')
            lines.append(f'{latency}_sum{{deployment="{name}"}} {dep.total.latency_sum_ms:.3f}')
            lines.append(f'{latency}_count{{deployment="{name}"}} {dep.total.requests}')
        return "\n".join(lines) + "\n"


def handle(create: bool = True) -> Any:
    """The aggregator actor of the connected cluster (created on first use)."""
    from .._ray import named_actor

    return named_actor(Aggregator, AGGREGATOR_NAME, create)
