"""Model quality in the aggregator: input and prediction drift, feedback and accuracy.

Replicas register each version's reference profile (made from the training sample at
deploy time and stored in the Bento) and push, with their per-second counts, the drift
counts of the inputs and predictions they served and the predictions by request id.
Feedback (``POST /<name>/feedback``) is matched here with those predictions, so it may
reach any replica. Drift counts are kept in :data:`SLOT_S`-second slots for
:data:`KEEP_S` seconds: the sliding window of :meth:`Quality.report` sums the last ones.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..spec import FairnessThresholds
from .drift import DriftThresholds, compare, histogram
from .importance import Importance
from .importance import report as importance_report
from .metrics import Observed
from .profile import ReferenceProfile, merge
from .remembered import Memory
from .segments import Segments, add, score
from .segments import report as segment_report

SLOT_S = 10
KEEP_S = 3600


@dataclass
class _Slot:
    at: int
    version: int
    inputs: dict[str, list[int]] = field(default_factory=dict)
    outputs: dict[str, list[int]] = field(default_factory=dict)
    feedback: int = 0
    correct: int = 0
    abs_error: float = 0.0
    sq_error: float = 0.0
    segments: Segments = field(default_factory=dict)
    importance: Importance = field(default_factory=Importance)

    def __setstate__(self, state: dict[str, Any]) -> None:  # slots saved before importance
        self.__dict__.update({"importance": Importance(), **state})


@dataclass
class _Reference:
    inputs: ReferenceProfile | None
    outputs: ReferenceProfile | None
    task: str
    thresholds: DriftThresholds
    reason: str
    segments: list[str] = field(default_factory=list)
    fairness: FairnessThresholds = field(default_factory=FairnessThresholds)
    columns: list[str] = field(default_factory=list)
    importance: dict[str, Any] | None = None  # mean |contribution| of the deploy-time sample


def _score(task: str, predicted: list[Any], labels: list[Any]) -> tuple[int, float, float]:
    """(correct, sum |error|, sum error²) of predictions against true labels."""
    if task == "classification":
        return sum(str(p) == str(y) for p, y in zip(predicted, labels, strict=True)), 0.0, 0.0
    errors = [float(p) - float(y) for p, y in zip(predicted, labels, strict=True)]
    return 0, sum(abs(e) for e in errors), sum(e * e for e in errors)


class Quality:
    """One deployment's references, drift slots and remembered predictions."""

    def __init__(self) -> None:
        self.references: dict[int, _Reference] = {}
        self.slots: deque[_Slot] = deque(maxlen=KEEP_S // SLOT_S)
        self.memory = Memory()  # each request's predictions (and segment values) by id
        self.feedback_total = 0
        self.serving: int | None = None  # the version last loaded or heard from

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Counters saved before the memory was chunked kept their predictions inline."""
        predictions, rows = state.pop("predictions", None), state.pop("segment_rows", {})
        self.__dict__.update(state)
        if predictions is not None:
            self.memory = Memory()
            for rid, (version, predicted) in predictions.items():
                self.memory.add(rid, (version, predicted, rows.get(rid)))

    def register(self, version: int, reference: dict[str, Any]) -> None:
        """A version's reference: {inputs, predictions (profiles as dicts), task, thresholds}."""
        self.serving = version
        if version in self.references:
            return
        inputs, outputs = reference.get("inputs"), reference.get("predictions")
        self.references[version] = _Reference(
            ReferenceProfile.from_dict(inputs) if inputs else None,
            ReferenceProfile.from_dict(outputs) if outputs else None,
            reference.get("task", "regression"),
            DriftThresholds(**reference.get("thresholds", {})),
            reference.get("reason", ""),
            list(reference.get("segments", [])),
            FairnessThresholds(**reference.get("fairness", {})),
            list(reference.get("columns", [])),
            reference.get("importance"),
        )

    def _slot(self, version: int) -> _Slot:
        at = int(time.time()) // SLOT_S * SLOT_S
        for slot in reversed(self.slots):
            if slot.at != at:
                break
            if slot.version == version:
                return slot
        self.slots.append(_Slot(at, version))
        return self.slots[-1]

    def push(self, version: int, data: Observed) -> None:
        """Drift counts and predictions by request id pushed by a replica."""
        self.serving = version
        if data.inputs or data.outputs:
            slot = self._slot(version)
            slot.inputs = merge(slot.inputs, data.inputs or {})
            slot.outputs = merge(slot.outputs, data.outputs or {})
        rows = data.segment_rows
        for rid, predicted in data.predictions.items():
            self.memory.add(rid, (version, predicted, rows.get(rid)))
        if data.importance is not None and data.importance.rows:
            self._slot(version).importance.merge(data.importance)
        if data.segments:
            add(self._slot(version).segments, data.segments)

    def feedback(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Match true labels with remembered predictions; unknown ids are listed, not counted."""
        unknown, mismatched, matched = [], [], 0
        for item in items:
            rid, label = str(item["request_id"]), item["label"]
            entry = self.memory.get(rid)
            if entry is None:
                unknown.append(rid)
                continue
            version, predicted, rows = entry
            labels = label if isinstance(label, list) else [label]
            if len(labels) != len(predicted):
                mismatched.append(rid)
                continue
            ref = self.references.get(version)
            correct, abs_err, sq_err = _score(ref.task if ref else "regression", predicted,
                                              labels)  # fmt: skip
            slot = self._slot(version)
            slot.feedback += len(labels)
            slot.correct += correct
            slot.abs_error += abs_err
            slot.sq_error += sq_err
            segments = getattr(ref, "segments", None)  # None: a reference saved before segments
            if segments and rows is not None and len(rows) == len(labels):
                assert ref is not None
                score(slot.segments, segments, rows, predicted, labels,
                      ref.task == "classification")  # fmt: skip
            self.feedback_total += len(labels)
            matched += 1
        return {"matched": matched, "unknown": unknown, "wrong_length": mismatched}

    def report(self, window_s: int = 300, version: int | None = None) -> dict[str, Any]:
        """Drift of a version's inputs and predictions, and accuracy, over the window
        (default: the live version's)."""
        if not self.references or (version is not None and version not in self.references):
            return {"available": False, "reason": "no replica has reported yet"}
        if version is None:
            version = self.serving if self.serving in self.references else max(self.references)
        ref = self.references[version]
        since = int(time.time()) - window_s
        recent = [s for s in self.slots if s.at >= since - SLOT_S and s.version == version]
        inputs: dict[str, list[int]] = {}
        outputs: dict[str, list[int]] = {}
        for s in recent:
            inputs, outputs = merge(inputs, s.inputs), merge(outputs, s.outputs)
        return {
            "available": ref.inputs is not None,
            "reason": ref.reason,
            "version": version,
            "window_s": window_s,
            "task": ref.task,
            "thresholds": ref.thresholds.__dict__,
            "features": _verdicts(ref.inputs, inputs, ref.thresholds),
            "histograms": _histograms(ref.inputs, inputs),
            "predictions": _verdicts(ref.outputs, outputs, ref.thresholds),
            "prediction_histogram": _histograms(ref.outputs, outputs),
            "accuracy": _accuracy(ref.task, recent, self.feedback_total),
            "importance": _importance(ref, recent),
        }

    def segments(self, window_s: int = 300) -> dict[str, Any]:
        """Per value of each segment column of the live version over the window, and gaps."""
        if not self.references:
            return {"available": False, "reason": "no replica has reported yet"}
        version = self.serving if self.serving in self.references else max(self.references)
        ref = self.references[version]
        if not getattr(ref, "segments", None):
            return {"available": False, "version": version,
                    "reason": "deployed without segments= (input columns to split by)"}  # fmt: skip
        since = int(time.time()) - window_s
        merged: Segments = {}
        for s in self.slots:
            if s.at >= since - SLOT_S and s.version == version:
                add(merged, getattr(s, "segments", {}))
        columns = segment_report(merged, ref.task == "classification", ref.inputs,
                                 ref.thresholds, ref.fairness)  # fmt: skip
        return {
            "available": True,
            "version": version,
            "window_s": window_s,
            "task": ref.task,
            "thresholds": ref.fairness.__dict__,
            "columns": {
                c: columns.get(
                    c, {"values": {}, "flagged": False, "reason": "no traffic in the window"}
                )
                for c in ref.segments
            },
            "flagged": [c for c in ref.segments if columns.get(c, {}).get("flagged")],
        }


def _importance(ref: _Reference, slots: list[_Slot]) -> dict[str, Any]:
    live = Importance()
    for s in slots:
        live.merge(s.importance)
    columns = getattr(ref, "columns", None) or sorted(live.sums)
    return importance_report(columns, live, getattr(ref, "importance", None))


def _verdicts(
    profile: ReferenceProfile | None, live: dict[str, list[int]], thresholds: DriftThresholds
) -> list[dict[str, Any]]:
    return [d.to_dict() for d in compare(profile, live, thresholds)] if profile else []


def _histograms(profile: ReferenceProfile | None, live: dict[str, list[int]]) -> dict[str, Any]:
    if profile is None:
        return {}
    return {f.name: histogram(profile, live, f.name).to_dict() for f in profile.features}


def _accuracy(task: str, slots: list[_Slot], total: int) -> dict[str, Any]:
    n = sum(s.feedback for s in slots)
    out: dict[str, Any] = {"task": task, "labels": n, "labels_total": total}
    if task == "classification":
        out["accuracy"] = sum(s.correct for s in slots) / n if n else None
    else:
        out["mae"] = sum(s.abs_error for s in slots) / n if n else None
        out["rmse"] = (sum(s.sq_error for s in slots) / n) ** 0.5 if n else None
    return out
