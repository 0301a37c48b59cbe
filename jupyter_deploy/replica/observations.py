"""What a replica saw, for drift and feedback: inputs, predictions, request ids.

The serving path only appends references to lists (the model input and output are
already in memory); once a second, off the request path, :meth:`Observations.drain`
turns them into drift counts against the version's reference profiles and a map of
predictions by request id, which the recorder pushes to the aggregator with the counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..monitoring.importance import Importance
from ..monitoring.metrics import Observed
from ..monitoring.profile import PREDICTION, ReferenceProfile
from ..monitoring.segments import labels, observe


@dataclass
class _Seen:
    inputs: list[Any] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


@dataclass
class VersionReference:
    """A version's profiles and input column names, as the replica loaded them."""

    columns: list[str]
    inputs: ReferenceProfile | None
    outputs: ReferenceProfile | None
    classification: bool = False


class Observations:
    """Per-version buffers of one replica, drained every flush."""

    def __init__(self, segments: list[str] | tuple[str, ...] = ()) -> None:
        self.segments = list(segments)
        self.references: dict[int, VersionReference] = {}
        self._seen: dict[int, _Seen] = {}
        self.explained: Callable[[int], Importance | None] | None = None  # live importance

    def add(self, version: int, x: Any, out: Any, request_id: str) -> None:
        seen = self._seen.get(version)
        if seen is None:
            seen = self._seen[version] = _Seen()
        seen.inputs.append(x)
        seen.outputs.append(out)
        seen.ids.append(request_id)

    def drain(self, version: int) -> Observed | None:
        """Drift counts and predictions by id seen for ``version`` since the last drain."""
        seen = self._seen.pop(version, None)
        explained = self.explained(version) if self.explained is not None else None
        if seen is None:
            return None if explained is None else Observed(importance=explained)
        ref = self.references.get(version)
        ids = zip(seen.ids, seen.outputs, strict=True)
        data = Observed({rid: np.asarray(out).tolist() for rid, out in ids}, importance=explained)
        columns = _columns(seen.inputs, ref.columns) if ref is not None else None
        if ref is not None and ref.inputs is not None:
            data.inputs = ref.inputs.summarise(columns)
        if ref is not None and self.segments:
            self._segments(data, seen, ref, columns)
        if ref is not None and ref.outputs is not None:
            data.outputs = ref.outputs.summarise({PREDICTION: np.concatenate(seen.outputs)})
        return data

    def _segments(self, data: Observed, seen: _Seen, ref: VersionReference, columns: Any) -> None:
        """Counts per segment value, and each request's rows' values for its feedback."""
        outputs = np.concatenate([np.asarray(o).reshape(len(x)) for o, x in
                                  zip(seen.outputs, seen.inputs, strict=True)])  # fmt: skip
        data.segments = observe(columns, outputs, self.segments, ref.classification, ref.inputs)
        present = [c for c in self.segments if c in columns]
        values = [labels(columns[c]) for c in present]
        start = 0
        for rid, x in zip(seen.ids, seen.inputs, strict=True):
            end = start + len(x)
            data.segment_rows[rid] = [list(row) for row in zip(*(v[start:end] for v in values),
                                                                  strict=True)]  # fmt: skip
            start = end

    def versions(self) -> list[int]:
        return list(self._seen)


def _columns(inputs: list[Any], names: list[str]) -> Any:
    """The model inputs of a second as columns (a name -> values mapping)."""
    first = inputs[0]
    if hasattr(first, "columns"):
        if all(getattr(d, "kind", "O") in "biuf" for d in first.dtypes):
            # One row per request is the common case: stacking the frames' arrays costs
            # ~3 us a frame where pandas.concat costs ~40 (most of monitoring's cost).
            matrix = np.concatenate([f.to_numpy() for f in inputs])
            return {name: matrix[:, i] for i, name in enumerate(first.columns)}
        return {c: np.concatenate([f[c].to_numpy() for f in inputs]) for c in first.columns}
    matrix = np.concatenate(inputs) if len(inputs) > 1 else np.asarray(first)
    return {name: matrix[:, i] for i, name in enumerate(names)}
