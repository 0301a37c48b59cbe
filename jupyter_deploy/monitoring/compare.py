"""Which version wins: two or more live versions side by side, with 95 % intervals.

From each version's counts over a window (:meth:`Aggregator.versions`), one row per
version: its share, requests, error rate, p50/p95 latency, predicted classes or values, and
accuracy from feedback; for every version but the baseline, the difference to the baseline
with a 95 % interval (normal approximation: differences of proportions for the error rate
and accuracy, of means for the latency, whose variance comes from the latency histogram's
bucket midpoints). A shadow's row has its agreement with the answers callers got.
"""

from __future__ import annotations

import math
from typing import Any

from .metrics import LATENCY_BUCKETS_MS, Counts

Z95 = 1.959964


def _proportion_diff(k1: int, n1: int, k0: int, n0: int) -> tuple[float, float, float] | None:
    """(p1 - p0, low, high) with a 95 % Wald interval; None without data on both sides."""
    if not n1 or not n0:
        return None
    p1, p0 = k1 / n1, k0 / n0
    half = Z95 * math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    return p1 - p0, p1 - p0 - half, p1 - p0 + half


def _latency(counts: Counts) -> tuple[float, float] | None:
    """(mean ms, variance) from the histogram's bucket midpoints (the mean is exact)."""
    if not counts.requests:
        return None
    mean = counts.latency_sum_ms / counts.requests
    lows = (0.0, *LATENCY_BUCKETS_MS[:-1])
    mids = [(lo + hi) / 2 if math.isfinite(hi) else lo * 1.5 for lo, hi in
            zip(lows, LATENCY_BUCKETS_MS, strict=True)]  # fmt: skip
    var = sum(n * (m - mean) ** 2 for m, n in zip(mids, counts.latency, strict=True))
    return mean, var / max(1, counts.requests - 1)


def _mean_diff(a: Counts, b: Counts) -> tuple[float, float, float] | None:
    la, lb = _latency(a), _latency(b)
    if la is None or lb is None:
        return None
    half = Z95 * math.sqrt(la[1] / a.requests + lb[1] / b.requests)
    return la[0] - lb[0], la[0] - lb[0] - half, la[0] - lb[0] + half


def _errors(counts: Counts) -> int:
    return sum(n for code, n in counts.by_status.items() if int(code) >= 500)


def _accuracy(report: dict[str, Any]) -> tuple[float | None, int]:
    acc = report.get("accuracy", {})
    return acc.get("accuracy"), int(acc.get("labels", 0))


def _predictions(report: dict[str, Any]) -> dict[str, float]:
    """The share of each predicted class (or value bucket) in the window."""
    hist = next(iter(report.get("prediction_histogram", {}).values()), None)
    if not hist or not hist.get("n"):
        return {}
    return {label: round(p, 4) for label, p in zip(hist["labels"], hist["live"], strict=True)}


def _interval(diff: tuple[float, float, float] | None, digits: int) -> dict[str, Any]:
    if diff is None:
        return {"diff": None, "ci95": None}
    d, lo, hi = (round(v, digits) for v in diff)
    return {"diff": d, "ci95": (lo, hi)}


def compare(
    baseline: int,
    weights: dict[int, float],
    shadow: int | None,
    data: dict[str, Any],
) -> list[dict[str, Any]]:
    """One row per version (baseline first), from :meth:`Aggregator.versions`' ``data``."""
    counts: dict[int, Counts] = data["counts"]
    quality: dict[int, dict[str, Any]] = data["quality"]
    base = counts.get(baseline, Counts())
    base_acc, base_labels = _accuracy(quality.get(baseline, {}))
    order = [baseline, *sorted(v for v in weights if v != baseline)]
    order += [shadow] if shadow is not None and shadow not in order else []
    rows = []
    for version in order:
        c, report = counts.get(version, Counts()), quality.get(version, {})
        acc, labels = _accuracy(report)
        role = "baseline" if version == baseline else "shadow" if version == shadow else "split"
        row: dict[str, Any] = {
            "version": version,
            "role": role,
            "share": weights.get(version, 0.0),
            "requests": c.requests,
            "error_rate": _errors(c) / c.requests if c.requests else None,
            "p50_ms": c.percentile(0.5),
            "p95_ms": c.percentile(0.95),
            "mean_ms": c.latency_sum_ms / c.requests if c.requests else None,
            "predictions": _predictions(report),
            "accuracy": acc,
            "labels": labels,
        }
        if version != baseline and role != "shadow":
            err = _proportion_diff(_errors(c), c.requests, _errors(base), base.requests)
            row["error_rate_vs_baseline"] = _interval(err, 4)
            row["mean_ms_vs_baseline"] = _interval(_mean_diff(c, base), 3)
            accs = None
            if acc is not None and base_acc is not None:
                accs = _proportion_diff(round(acc * labels), labels, round(base_acc * base_labels),
                                        base_labels)  # fmt: skip
            row["accuracy_vs_baseline"] = _interval(accs, 4)
        if role == "shadow":
            seen = data["shadow"].get(version)
            row["requests"] = seen.requests if seen else 0
            row["agreement"] = seen.agree / seen.rows if seen and seen.rows else None
        rows.append(row)
    return rows
