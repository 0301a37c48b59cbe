"""Reference profiles of features and the mergeable live counts compared with them.

At deploy time :meth:`ReferenceProfile.from_frame` profiles the training sample; the profile
is stored with the Bento (:meth:`~ReferenceProfile.to_dict` is JSON-safe). Replicas turn each
batch of live rows into one small count vector per feature (:meth:`~ReferenceProfile.summarise`,
vectorised over the batch). Count vectors add up (:func:`merge`: the sum of two summaries is the
summary of the union), so the aggregator keeps one per slot and sums the last W seconds, and
:func:`jupyter_deploy.drift.compare` scores each feature of that window against the reference.

Buckets. A numeric feature is cut at the reference's quantiles (``bins`` fine bins, duplicate
cut points dropped); a numeric feature with at most :data:`DISCRETE_MAX` distinct reference
values is cut halfway between them instead, so each value gets its own bucket. A categorical
feature keeps its ``max_categories`` most frequent reference values, then an "other" bucket
(unseen live values land there). Every feature ends with a "missing" bucket (NaN/None/NA;
for a numeric feature also a live value that is not a number).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from jupyter_deploy.errors import InvalidSpecError

if TYPE_CHECKING:
    import pandas

Kind = Literal["numeric", "categorical"]
#: Live summary: bucket counts per feature name (plain lists, JSON/pickle friendly).
Counts = dict[str, list[int]]
#: Numeric features with at most this many distinct reference values get one bucket per value.
DISCRETE_MAX = 10
# The name of the predictions' "feature" in a reference profile and in live counts.
PREDICTION = "prediction"
PSI_BINS = 10
_FORMAT = 1


def is_finite_number(value: object) -> bool:
    """A real number (not a bool), neither NaN nor infinite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class FeatureProfile:
    """One feature of the reference: its buckets and the reference counts in them.

    ``reference`` has one count per bucket: numeric ``len(edges) + 1`` bins (bin ``i`` holds
    ``edges[i-1] <= x < edges[i]``) then "missing"; categorical one per category, "other",
    then "missing". ``lo``/``hi`` are the reference's finite min and max (chart labels).
    """

    name: str
    kind: Kind
    reference: tuple[int, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[Any, ...] = ()
    lo: float | None = None
    hi: float | None = None

    @property
    def size(self) -> int:
        return len(self.reference)

    @cached_property
    def _cuts(self) -> np.ndarray:
        return np.asarray(self.edges, dtype=float)

    @cached_property
    def _codes(self) -> dict[Any, int]:
        return {c: i for i, c in enumerate(self.categories)}

    @cached_property
    def groups(self) -> np.ndarray:
        """PSI/chart group of each bucket: numeric bins merged into reference deciles."""
        if self.kind == "categorical":
            return np.arange(self.size)
        ref = np.asarray(self.reference[:-1], dtype=float)
        total = ref.sum()
        if total == 0:
            return np.append(np.zeros(len(ref), dtype=int), 1)
        # A bin joins the decile its left side falls in; merged runs stay contiguous.
        before = np.concatenate(([0.0], np.cumsum(ref)[:-1])) / total
        decile = np.minimum(np.floor(before * PSI_BINS + 1e-9), PSI_BINS - 1).astype(int)
        group = np.unique(decile, return_inverse=True)[1]
        return np.append(group, group.max() + 1)

    def count(self, values: Any, rows: int | None = None) -> np.ndarray:
        """Bucket counts of ``values`` (``None``: ``rows`` missing values)."""
        if values is None:
            out = np.zeros(self.size, dtype=np.int64)
            out[-1] = rows or 0
            return out
        if self.kind == "numeric":
            x = _as_float(values)
            index = np.searchsorted(self._cuts, x, side="right")
            index[np.isnan(x)] = self.size - 1
        else:
            items = values.to_numpy(dtype=object) if hasattr(values, "to_numpy") else values
            index = self._categorical_index(np.asarray(items, dtype=object))
        return np.bincount(index, minlength=self.size)

    def _categorical_index(self, items: np.ndarray) -> np.ndarray:
        import pandas

        # A dict lookup per value beats pandas' hash join on the small batches replicas see.
        codes = self._codes
        try:
            index = np.fromiter((codes.get(v, -1) for v in items), np.intp, len(items))
        except TypeError:  # an unhashable value (list, dict) is never a known category
            index = np.array([codes.get(v, -1) if _hashable(v) else -1 for v in items], np.intp)
        unknown = np.flatnonzero(index < 0)
        if len(unknown):  # unseen values go to "other", NaN/None/NA to "missing"
            missing = np.asarray(pandas.isna(items[unknown]), dtype=bool)
            index[unknown] = np.where(missing, self.size - 1, self.size - 2)
        return index

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "reference": list(self.reference),
            "edges": list(self.edges),
            "categories": list(self.categories),
            "lo": self.lo,
            "hi": self.hi,
        }


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _as_float(values: Any) -> np.ndarray:
    """Values as a float array, NaN for missing and for what is not a number."""
    try:
        if hasattr(values, "to_numpy"):  # a Series: ~6x cheaper than np.asarray on one
            return np.asarray(values.to_numpy(dtype=float, na_value=np.nan))
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        import pandas

        series = pandas.to_numeric(pandas.Series(np.asarray(values, dtype=object)), errors="coerce")
        return series.to_numpy(dtype=float, na_value=np.nan)


def _plain(value: Any) -> Any:
    """A category as a JSON-safe Python scalar."""
    value = value.item() if isinstance(value, np.generic) else value
    return value if isinstance(value, str | int | float | bool) else str(value)


def _numeric(name: str, values: Any, bins: int) -> FeatureProfile:
    x = _as_float(values)
    finite = x[np.isfinite(x)]
    distinct = np.unique(finite)
    if len(distinct) <= DISCRETE_MAX:
        cuts = (distinct[1:] + distinct[:-1]) / 2
    else:
        cuts = np.unique(np.quantile(finite, np.arange(1, bins) / bins))
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (None, None)
    shell = FeatureProfile(name, "numeric", (0,) * (len(cuts) + 2), tuple(cuts.tolist()))
    counts = tuple(shell.count(x).tolist())
    return FeatureProfile(name, "numeric", counts, shell.edges, lo=lo, hi=hi)


def _categorical(name: str, values: Any, max_categories: int) -> FeatureProfile:
    import pandas

    top = pandas.Series(np.asarray(values, dtype=object)).value_counts(dropna=True)
    categories = tuple(dict.fromkeys(_plain(v) for v in top.index[:max_categories]))
    shell = FeatureProfile(name, "categorical", (0,) * (len(categories) + 2), (), categories)
    return FeatureProfile(name, "categorical", tuple(shell.count(values).tolist()), (), categories)


@dataclass
class ReferenceProfile:
    """The reference distribution of every input feature (or of the predictions)."""

    features: list[FeatureProfile]

    @classmethod
    def from_frame(
        cls, frame: pandas.DataFrame, *, max_categories: int = 50, bins: int = 100
    ) -> ReferenceProfile:
        """Profile a training sample.

        Parameters
        ----------
        frame
            One column per feature. Numeric (non-bool) columns are binned at their
            quantiles; bool, object, string and category columns are categorical.
            Datetime-like columns are skipped (not supported yet).
        max_categories
            Categories kept per categorical feature; rarer ones share an "other" bucket.
        bins
            Fine quantile bins per numeric feature (KS resolution is about ``1/bins``).
        """
        import pandas

        features = []
        for column in frame.columns:
            series = frame[column]
            dtype = series.dtype
            if (
                pandas.api.types.is_datetime64_any_dtype(dtype)
                or isinstance(dtype, pandas.PeriodDtype)
                or pandas.api.types.is_timedelta64_dtype(dtype)
            ):
                continue
            features.append(_profile(str(column), series, None, bins, max_categories))
        return cls(features)

    @classmethod
    def from_values(
        cls,
        name: str,
        values: Any,
        kind: Kind | None = None,
        *,
        max_categories: int = 50,
        bins: int = 100,
    ) -> ReferenceProfile:
        """Profile one sequence, e.g. the model's predictions on the training sample.

        ``kind`` ``"categorical"`` for a classifier's classes, ``"numeric"`` for a regressor's
        values; ``None`` infers it from the dtype. Returns a one-feature profile, so
        :meth:`summarise` (``{name: predictions}``), :func:`compare` and :func:`histogram`
        work on it unchanged.
        """
        if kind not in (None, "numeric", "categorical"):
            raise InvalidSpecError(f"drift kind must be 'numeric' or 'categorical', got {kind!r}")
        return cls([_profile(name, values, kind, bins, max_categories)])

    def feature(self, name: str) -> FeatureProfile:
        for profile in self.features:
            if profile.name == name:
                return profile
        raise KeyError(name)

    def summarise(self, frame: pandas.DataFrame | Mapping[str, Any]) -> Counts:
        """Live bucket counts per feature of a batch of rows (a DataFrame or column mapping).

        Columns match features by ``str(column)`` (as :meth:`from_frame` names them, so a
        frame with integer column labels works). Extra columns are ignored; a feature without
        a column counts all rows as missing.
        """
        if hasattr(frame, "columns"):
            rows, labels = len(frame), frame.columns
        else:
            rows, labels = (len(next(iter(frame.values()))) if frame else 0), frame.keys()
        present = {str(label): label for label in labels}
        return {
            f.name: f.count(frame[present[f.name]] if f.name in present else None, rows).tolist()
            for f in self.features
        }

    def empty(self) -> Counts:
        """Zero counts with the shapes :meth:`summarise` returns."""
        return {f.name: [0] * f.size for f in self.features}

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form; :meth:`from_dict` gives back an equal profile."""
        return {"format": _FORMAT, "features": [f.to_dict() for f in self.features]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """Rebuild a profile from :meth:`to_dict`'s output."""
        try:
            if data["format"] != _FORMAT:
                raise ValueError(f"format {data['format']!r}, expected {_FORMAT}")
            features = [
                FeatureProfile(
                    name=str(f["name"]),
                    kind=f["kind"],
                    reference=tuple(int(c) for c in f["reference"]),
                    edges=tuple(float(e) for e in f["edges"]),
                    categories=tuple(f["categories"]),
                    lo=f["lo"],
                    hi=f["hi"],
                )
                for f in data["features"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidSpecError(f"not a drift reference profile: {exc}") from None
        for f in features:
            extra = len(f.edges) if f.kind == "numeric" else len(f.categories)
            if f.kind not in ("numeric", "categorical") or f.size != extra + 2:
                raise InvalidSpecError(f"not a drift reference profile: bad feature {f.name!r}")
        return cls(features)


def _profile(name: str, values: Any, kind: Kind | None, bins: int, top: int) -> FeatureProfile:
    if not (isinstance(bins, int) and 2 <= bins <= 10_000):
        raise InvalidSpecError(f"drift bins must be an integer in 2..10000, got {bins!r}")
    if not (isinstance(top, int) and top >= 1):
        raise InvalidSpecError(f"max_categories must be an integer >= 1, got {top!r}")
    if kind is None:
        import pandas

        dtype = getattr(values, "dtype", None)
        dtype = pandas.Series(values).dtype if dtype is None else dtype
        numeric = pandas.api.types.is_numeric_dtype(dtype)
        kind = "numeric" if numeric and not pandas.api.types.is_bool_dtype(dtype) else "categorical"
    return _numeric(name, values, bins) if kind == "numeric" else _categorical(name, values, top)


def merge(a: Counts, b: Counts) -> Counts:
    """Sum two live summaries (features of either; shapes must agree where both have one)."""
    out = {name: list(counts) for name, counts in a.items()}
    for name, counts in b.items():
        if name not in out:
            out[name] = list(counts)
        elif len(out[name]) != len(counts):
            raise InvalidSpecError(
                f"cannot merge drift counts of {name!r}: {len(out[name])} vs {len(counts)} buckets"
            )
        else:
            out[name] = [x + y for x, y in zip(out[name], counts, strict=True)]
    return out
