"""What a deployment handle changes: versions, traffic, replicas, existence.

Each method returns a fresh handle of the same deployment (``Deployment`` inherits these),
built from the record the control plane holds after the change.
"""

from __future__ import annotations

from typing import Any, Protocol

from . import actions, traffic


class Named(Protocol):
    """What these methods read of the ``Deployment`` they are mixed into."""

    @property
    def name(self) -> str: ...


def _fresh(handle: Named, view: actions.View) -> Any:
    """A new handle of the same class from ``view`` (Deployment(record, url, status))."""
    return type(handle)(*view)  # type: ignore[call-arg]


class Lifecycle:
    """Rollouts and traffic of one deployment; mixed into ``Deployment``."""

    def rollback(self: Named) -> Any:
        """All traffic back to the live version if it is split or shadowed; otherwise the
        version that was live before the current one, rolled out like a new one."""
        return _fresh(self, traffic.rollback(self.name))

    def scale(self: Named, min_replicas: int, max_replicas: int) -> Any:
        """Change the replica range without restarting replicas."""
        return _fresh(self, actions.scale(self.name, min_replicas, max_replicas))

    def delete(self: Named) -> None:
        actions.undeploy(self.name)

    def traffic(self: Named) -> dict[str, Any]:
        """The live version, the weights of the split, the sticky field and the shadow
        (with how often its answers agreed with the callers')."""
        import ray

        from ..monitoring.aggregator import handle

        rec, _ = actions.record(self.name)
        counts = ray.get(handle().snapshot.remote(self.name, 60))["shadow"]
        return traffic.describe(rec, counts)

    def compare(self: Named, window_s: int = 300) -> Any:
        """The live versions side by side over the last ``window_s`` seconds (a DataFrame,
        baseline first): share, requests, error rate, p50/p95 and mean latency, predicted
        classes, accuracy from feedback, and each other version's difference to the
        baseline with a 95 % interval; a shadow's agreement with the callers' answers."""
        import pandas as pd
        import ray

        from ..monitoring.aggregator import handle
        from ..monitoring.compare import compare

        rec, _ = actions.record(self.name)
        assert rec.live is not None
        t = rec.traffic
        weights = dict(t.weights) if t else {rec.live: 1.0}
        shadow = t.shadow if t else None
        versions = sorted({*weights, *([shadow] if shadow is not None else [])})
        data = ray.get(handle().versions.remote(self.name, window_s, versions))
        return pd.DataFrame(compare(rec.live, weights, shadow, data)).set_index("version")

    def split(self: Named, weights: dict[int, float], sticky: str | None = None) -> Any:
        """Share requests between versions by weight, e.g. ``{1: 0.9, 2: 0.1}``.

        ``sticky``: an input column; requests with the same value (or the same
        ``x-jd-key`` header) always reach the same version while the weights stay.
        """
        return _fresh(self, traffic.split(self.name, weights, sticky))

    def shadow(self: Named, version: int | None, rate: float = 1.0) -> Any:
        """Mirror a share ``rate`` of requests to ``version`` after each caller's answer;
        callers only ever get the live split's answers. ``None`` stops mirroring."""
        return _fresh(self, traffic.shadow(self.name, version, rate))

    def promote(self: Named) -> Any:
        """All traffic to the newest version."""
        return _fresh(self, traffic.promote(self.name))
