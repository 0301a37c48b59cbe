"""Input and prediction drift: PSI and a two-sample test per feature, over a window.

The reference profiles and the live counts come from :mod:`jupyter_deploy.profile`.

Scores.

* Numeric test: two-sample Kolmogorov-Smirnov on the *binned* CDFs, i.e. the sup of
  ``|F_live - F_ref|`` taken over the cut points only. It never exceeds the exact statistic
  and, with fine quantile bins on continuous data, is within about ``1/bins`` of it. Missing
  values sort after every number, so a jump of the missing share moves the CDF. The p-value
  is the KS distribution's for the effective size ``n*m/(n+m)`` (Stephens' approximation,
  see :func:`_ks`); conservative, as D is.
* Categorical test: chi-square goodness of fit of the live counts against the reference
  proportions (0.5 pseudo-count per bucket so an unseen bucket has an expectation; buckets
  expected below 5 are pooled).
* PSI: numeric over about deciles of the reference (fine bins merged) plus "missing",
  categorical over its buckets; empty buckets count as :data:`PSI_EPSILON`. Fewer buckets
  than the fine ones because PSI's noise grows with them (about ``(B-1)(1/n+1/m)`` under no
  drift).

A feature is flagged when both say so (see :class:`DriftThresholds`): the test says the change
is not window noise, PSI says it is big enough to matter (on a large window a test alone
flags negligible shifts, on a small one PSI alone flags noise). On windows of a few dozen
values PSI's noise alone passes 0.2, so there the test decides.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from ..errors import InvalidSpecError
from ..spec import DriftThresholds
from .profile import Counts, FeatureProfile, ReferenceProfile, merge

__all__ = [
    "DriftThresholds",
    "FeatureDrift",
    "FeatureProfile",
    "Histogram",
    "ReferenceProfile",
    "compare",
    "histogram",
    "merge",
]

PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict on one feature over one window of live values."""

    feature: str
    kind: str
    test: Literal["ks", "chi2"]
    n: int
    psi: float | None
    statistic: float | None
    p_value: float | None
    drifted: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _psi(ref: np.ndarray, live: np.ndarray, groups: np.ndarray) -> float:
    p = np.clip(np.bincount(groups, weights=ref) / ref.sum(), PSI_EPSILON, None)
    q = np.clip(np.bincount(groups, weights=live) / live.sum(), PSI_EPSILON, None)
    return float(np.sum((q - p) * np.log(q / p)))


def _ks(ref: np.ndarray, live: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    m, n = ref.sum(), live.sum()
    d = float(np.max(np.abs(np.cumsum(live) / n - np.cumsum(ref) / m)))
    # Stephens' finite-size correction of the Kolmogorov limit law: within ~1% of the exact
    # kstwo.sf near p=0.01 for n >= 20, at ~70 us where kstwo.sf takes up to tens of ms.
    root = math.sqrt(n * m / (n + m))
    return d, float(stats.kstwobign.sf(d * (root + 0.12 + 0.11 / root)))


def _chi2(ref: np.ndarray, live: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    smoothed = ref + 0.5
    expected = smoothed / smoothed.sum() * live.sum()
    observed = live.astype(float)
    small = expected < 5
    if small.any():
        pooled = observed[small].sum(), expected[small].sum()
        observed, expected = observed[~small], expected[~small]
        if pooled[1] >= 5 or not len(expected):
            observed, expected = np.append(observed, pooled[0]), np.append(expected, pooled[1])
        else:  # still too small alone: fold it into the smallest bucket
            j = int(np.argmin(expected))
            observed[j] += pooled[0]
            expected[j] += pooled[1]
    if len(observed) < 2:
        return 0.0, 1.0  # a single bucket cannot differ
    result = stats.chisquare(observed, expected)
    return float(result.statistic), float(result.pvalue)


def compare(
    profile: ReferenceProfile, live: Counts, thresholds: DriftThresholds | None = None
) -> list[FeatureDrift]:
    """Score every feature of ``profile`` against a live window's counts.

    Parameters
    ----------
    profile
        The reference profile.
    live
        Counts from :meth:`ReferenceProfile.summarise` / :func:`merge`; a feature absent from
        it has no live values.
    thresholds
        When to flag; :class:`DriftThresholds` defaults if ``None``.

    Returns
    -------
    list of FeatureDrift
        One per feature, in profile order.
    """
    thresholds = thresholds or DriftThresholds()
    thresholds.validate()
    out = []
    for f in profile.features:
        counts = np.asarray(live.get(f.name, [0] * f.size), dtype=float)
        if counts.shape != (f.size,):
            raise InvalidSpecError(
                f"live drift counts of {f.name!r} have {counts.size} buckets, expected {f.size}"
            )
        ref = np.asarray(f.reference, dtype=float)
        test: Literal["ks", "chi2"] = "ks" if f.kind == "numeric" else "chi2"
        n = int(counts.sum())
        if n < thresholds.min_count or ref.sum() == 0:
            why = (
                f"not enough data ({n} < {thresholds.min_count})"
                if ref.sum()
                else "empty reference"
            )
            out.append(FeatureDrift(f.name, f.kind, test, n, None, None, None, False, why))
            continue
        psi = _psi(ref, counts, f.groups)
        statistic, p = _ks(ref, counts) if test == "ks" else _chi2(ref, counts)
        big, significant = psi >= thresholds.psi, p < thresholds.p_value
        summary = f"psi {psi:.3g}, {test} p {p:.3g}"
        if big and significant:
            reason = f"drift: {summary}"
        elif big:
            reason = f"no drift: {summary} (not significant at {thresholds.p_value:g})"
        elif significant:
            reason = f"no drift: {summary} (psi below {thresholds.psi:g})"
        else:
            reason = f"no drift: {summary}"
        out.append(FeatureDrift(f.name, f.kind, test, n, psi, statistic, p, big and significant,
                                reason))  # fmt: skip
    return out


@dataclass(frozen=True)
class Histogram:
    """Reference vs live proportions of one feature, bucket by bucket, for a chart."""

    feature: str
    labels: list[str]
    reference: list[float]
    live: list[float]
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:.4g}"


def histogram(profile: ReferenceProfile, live: Counts, feature: str) -> Histogram:
    """The buckets of ``feature`` (PSI ones: numeric deciles) with both proportions.

    Buckets empty on both sides (an unused "other" or "missing") are left out; with no live
    values the live proportions are all 0.
    """
    f = profile.feature(feature)
    groups = f.groups
    size = int(groups.max()) + 1
    ref = np.bincount(groups, weights=np.asarray(f.reference, dtype=float), minlength=size)
    counts = np.asarray(live.get(feature, [0] * f.size), dtype=float)
    got = np.bincount(groups, weights=counts, minlength=size)
    if f.kind == "categorical":
        labels = [str(c) for c in f.categories] + ["other", "missing"]
    else:
        labels = []
        for g in range(size - 1):
            members = np.flatnonzero(groups[:-1] == g)
            first, last = int(members[0]), int(members[-1])
            low = f.edges[first - 1] if first > 0 else f.lo
            high = f.edges[last] if last < len(f.edges) else f.hi
            labels.append(f"[{_fmt(low)}, {_fmt(high)}{')' if last < len(f.edges) else ']'}")
        labels.append("missing")
    keep = (ref > 0) | (got > 0)
    return Histogram(
        feature=feature,
        labels=[label for label, k in zip(labels, keep, strict=True) if k],
        reference=(ref[keep] / max(ref.sum(), 1)).tolist(),
        live=(got[keep] / max(got.sum(), 1)).tolist(),
        n=int(got.sum()),
    )
