"""Monitoring split by the values of segment columns: the fairness view of a deployment.

A deployment made with ``segments=["sex", "region"]`` has its replicas count, once a
second and off the request path, each value's rows, predicted classes (or the sum of
predicted values) and input drift counts, and remember each request's segment values so
that feedback is scored per value too. The counts add up across replicas and seconds like
the drift counts, in the same :mod:`.quality` slots; :func:`report` turns a window of
them into per-value figures and the gaps between values:

- demographic parity difference: for each predicted class, the largest difference
  between two values' shares of rows predicted as that class; the largest over classes;
- accuracy difference: the largest difference between two values' accuracy on feedback.

Only values with at least ``min_count`` rows (labels, for accuracy) take part, so a
handful of rows never raises a flag. Regressors get the per-value mean prediction and
MAE, and no flag (a gap in the target's units has no default threshold).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..spec import DriftThresholds, FairnessThresholds
from .drift import compare
from .profile import Counts, ReferenceProfile, merge

MAX_VALUES = 50  # distinct values kept per column; rarer ones share OTHER
OTHER = "(other)"
MISSING = "(missing)"


@dataclass
class SegmentCounts:
    """One value of one segment column over some interval."""

    rows: int = 0
    predicted: Counter[str] = field(default_factory=Counter)  # class -> rows
    value_sum: float = 0.0  # sum of predicted values (regression)
    inputs: Counts = field(default_factory=dict)  # drift counts of the value's rows
    feedback: int = 0
    correct: int = 0
    abs_error: float = 0.0

    def merge(self, other: SegmentCounts) -> None:
        self.rows += other.rows
        self.predicted.update(other.predicted)
        self.value_sum += other.value_sum
        self.inputs = merge(self.inputs, other.inputs)
        self.feedback += other.feedback
        self.correct += other.correct
        self.abs_error += other.abs_error


Segments = dict[str, dict[str, SegmentCounts]]  # column -> value -> counts


def labels(values: Any) -> list[str]:
    """Segment values as the strings they are reported under."""
    out = []
    for v in np.asarray(values, dtype=object).tolist():
        missing = v is None or (isinstance(v, float) and math.isnan(v))
        out.append(MISSING if missing else str(v))
    return out


def observe(
    columns: dict[str, Any], outputs: Any, segments: list[str], classification: bool,
    profile: ReferenceProfile | None,
) -> Segments:  # fmt: skip
    """A second of one replica's rows (columns by name, predictions) split by segment."""
    outputs = np.asarray(outputs)
    out: Segments = {}
    for col in segments:
        if col not in columns:
            continue
        values = np.asarray(labels(columns[col]), dtype=object)
        per: dict[str, SegmentCounts] = {}
        for value in dict.fromkeys(values.tolist()):
            mask = values == value
            counts = SegmentCounts(rows=int(mask.sum()))
            if classification:
                counts.predicted = Counter(str(p) for p in outputs[mask].tolist())
            else:
                counts.value_sum = float(np.asarray(outputs[mask], dtype=float).sum())
            if profile is not None:
                counts.inputs = profile.summarise(
                    {n: np.asarray(c)[mask] for n, c in columns.items()}
                )
            per[value] = counts
        out[col] = per
    return out


def add(into: Segments, more: Segments) -> None:
    """Merge ``more`` into ``into``; past :data:`MAX_VALUES` values, new ones go to OTHER."""
    for col, values in more.items():
        known = into.setdefault(col, {})
        for value, counts in values.items():
            if value not in known and len(known) >= MAX_VALUES:
                value = OTHER
            known.setdefault(value, SegmentCounts()).merge(counts)


def score(into: Segments, names: list[str], rows: list[list[str]], predicted: list[Any],
          labels_: list[Any], classification: bool) -> None:  # fmt: skip
    """Feedback of one request: each row's label counted under each of its segment values."""
    for row, p, y in zip(rows, predicted, labels_, strict=True):
        for col, value in zip(names, row, strict=True):
            counts = SegmentCounts(feedback=1)
            if classification:
                counts.correct = int(str(p) == str(y))
            else:
                counts.abs_error = abs(float(p) - float(y))
            add(into, {col: {value: counts}})


def report(segs: Segments, classification: bool, profile: ReferenceProfile | None,
           drift: DriftThresholds, fair: FairnessThresholds) -> dict[str, Any]:  # fmt: skip
    """Per column: each value's figures, the gaps between values and whether one is flagged."""
    columns: dict[str, Any] = {}
    for col, values in segs.items():
        total = sum(c.rows for c in values.values()) or 1
        per = {}
        for value, c in sorted(values.items()):
            item: dict[str, Any] = {"rows": c.rows, "share": c.rows / total, "labels": c.feedback}
            if classification:
                item["predictions"] = (
                    {k: n / c.rows for k, n in sorted(c.predicted.items())} if c.rows else {}
                )
                item["accuracy"] = c.correct / c.feedback if c.feedback else None
            else:
                item["mean_prediction"] = c.value_sum / c.rows if c.rows else None
                item["mae"] = c.abs_error / c.feedback if c.feedback else None
            verdicts = compare(profile, c.inputs, drift) if profile and c.inputs else []
            item["drifted"] = [v.feature for v in verdicts if v.drifted]
            per[value] = item
        columns[col] = {"values": per, **_gaps(per, classification, fair)}
    return columns


def _gaps(per: dict[str, Any], classification: bool, fair: FairnessThresholds) -> dict[str, Any]:
    if not classification:
        return {"parity_difference": None, "accuracy_difference": None, "flagged": False,
                "reason": "no gap thresholds for a regressor"}  # fmt: skip
    big = {v: i for v, i in per.items() if i["rows"] >= fair.min_count}
    classes = {k for i in big.values() for k in i["predictions"]}
    parity = None
    if len(big) >= 2:
        parity = max((max(i["predictions"].get(k, 0.0) for i in big.values())
                      - min(i["predictions"].get(k, 0.0) for i in big.values())
                      for k in classes), default=0.0)  # fmt: skip
    labelled = [i["accuracy"] for i in per.values() if i["labels"] >= fair.min_count]
    accuracy = max(labelled) - min(labelled) if len(labelled) >= 2 else None
    reasons = []
    if parity is not None and parity >= fair.parity_gap:
        reasons.append(f"parity difference {parity:.3g} >= {fair.parity_gap:g}")
    if accuracy is not None and accuracy >= fair.accuracy_gap:
        reasons.append(f"accuracy difference {accuracy:.3g} >= {fair.accuracy_gap:g}")
    flagged = bool(reasons)
    if not flagged:
        reasons.append(f"no gap at or above the thresholds (values with >= {fair.min_count} rows)")
    return {
        "parity_difference": parity,
        "accuracy_difference": accuracy,
        "flagged": flagged,
        "reason": "; ".join(reasons),
    }
