"""Which loaded version answers a request: the split, decided inside the replica.

A deployment with one live version never comes here (the replica serves its one version
with no extra work). With a split, each request goes to a version by weight: at random,
or, when the request carries a sticky key (the ``x-jd-key`` header, or the deployment's
sticky field of the first instance), by a hash of that key that is the same in every
process and replica, so one key keeps reaching one version while the weights stay.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from .loaded import LoadedVersion

STICKY_HEADER = "x-jd-key"


def unit(key: str) -> float:
    """A stable number in [0, 1) for ``key`` (Python's hash() differs between processes)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Routing:
    """One replica's routing table, replaced whole by ``reconfigure()``.

    A request reads it once, so a change of split in the middle of a request never mixes
    two tables; ``key`` is the :class:`~jupyter_deploy.control.records.ServeTarget` key.
    """

    key: str
    primary: LoadedVersion
    versions: tuple[LoadedVersion, ...] = ()  # the split's, in version order
    edges: tuple[float, ...] = ()  # cumulative weights, same order
    sticky: str | None = None
    shadow: LoadedVersion | None = None
    shadow_rate: float = 0.0

    @property
    def split(self) -> bool:
        return len(self.versions) > 1

    def pick(self, body: bytes, header: str | None) -> LoadedVersion:
        """The version that answers this request."""
        if not self.split:
            return self.primary
        key = header or self._sticky_value(body)
        u = unit(key) if key is not None else random.random()
        i = min(bisect.bisect_right(self.edges, u), len(self.versions) - 1)
        return self.versions[i]

    def shadowed(self) -> bool:
        return self.shadow is not None and random.random() < self.shadow_rate

    def _sticky_value(self, body: bytes) -> str | None:
        """The sticky field of the first instance (records or rows), or None."""
        if self.sticky is None:
            return None
        try:
            first = json.loads(body)["instances"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            return None  # the runtime answers 400 for this body anyway
        value: Any = None
        if isinstance(first, dict):
            value = first.get(self.sticky)
        elif isinstance(first, list):
            names = [c.name for c in self.primary.runtime.schema.columns]
            if self.sticky in names and len(first) == len(names):
                value = first[names.index(self.sticky)]
        return None if value is None else str(value)


def routing(
    key: str,
    loaded: dict[int, LoadedVersion],
    primary: int,
    weights: dict[int, float] | None,
    sticky: str | None,
    shadow: int | None,
    shadow_rate: float,
) -> Routing:
    """The routing table for a target, from the versions it needs (all loaded)."""
    if not weights or len([w for w in weights.values() if w > 0]) <= 1:
        only = next((v for v, w in (weights or {}).items() if w > 0), primary)
        return Routing(key, loaded[only], sticky=sticky,
                       shadow=loaded.get(shadow) if shadow is not None else None,
                       shadow_rate=shadow_rate)  # fmt: skip
    order = sorted(v for v, w in weights.items() if w > 0)
    total = sum(weights[v] for v in order)
    edges, acc = [], 0.0
    for v in order:
        acc += weights[v] / total
        edges.append(acc)
    return Routing(
        key, loaded[primary], tuple(loaded[v] for v in order), tuple(edges), sticky,
        loaded.get(shadow) if shadow is not None else None, shadow_rate,
    )  # fmt: skip
