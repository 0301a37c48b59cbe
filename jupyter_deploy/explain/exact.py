"""Exact contributions for tree ensembles and linear models, on the features they see.

- Trees: SHAP's TreeExplainer (path-dependent: the trees' own cover is the background,
  so no data is needed). scikit-learn forests and trees explain probabilities; boosted
  trees (scikit-learn, XGBoost, LightGBM) explain their margin (log-odds).
- Linear: the closed form ``w_j (z_j - mean_j)``, base ``w . mean + b``, with the mean of
  the background rows (zero without one); classifiers explain their decision function.

Which output space the numbers add up to is not assumed from the model's class: the
first call compares ``base + sum`` with the model's probability and margin and keeps the
one that matches within :data:`TOLERANCE` (a float32 model: within its own rounding);
``None``: no exact explanation, the caller uses the model-agnostic one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

TOLERANCE = 1e-6
# A model that computes in float32 (XGBoost's margin) is itself only that precise: its
# sum over trees differs from shap's float64 one by float32 rounding (measured 3.3e-6 at
# 200 trees), so there the check allows 64 float32 ulps of the output.
FLOAT32_ULPS = 64 * float(np.finfo(np.float32).eps)
Raw = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # z -> (phi, base)


def tree(final: Any) -> Raw | None:
    """SHAP values of a tree ensembles's raw output, or None if shap cannot read it."""
    try:
        import shap

        explainer = shap.TreeExplainer(final)
    except Exception:  # not a tree model shap knows (or shap missing)
        return None

    def raw(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phi = explainer.shap_values(z, check_additivity=False)
        return np.asarray(phi, dtype=float), np.asarray(explainer.expected_value, dtype=float)

    return raw


def linear(final: Any, background: np.ndarray | None, weights: np.ndarray | None) -> Raw | None:
    """The closed form for a scikit-learn linear model, or None for anything else."""
    module = type(final).__module__
    if not module.startswith(("sklearn.linear_model", "sklearn.svm")):
        return None
    coef, intercept = getattr(final, "coef_", None), getattr(final, "intercept_", None)
    if coef is None or intercept is None:
        return None
    coef = np.asarray(coef, dtype=float)
    if coef.ndim == 2 and coef.shape[0] == 1:
        coef = coef[0]
    d = coef.shape[-1]
    mean = np.zeros(d) if background is None else np.average(background, axis=0, weights=weights)
    base = (
        coef @ mean
        + np.asarray(intercept, dtype=float).reshape(-1)[: 1 if coef.ndim == 1 else None]
    )
    if coef.ndim == 1:
        base = base.reshape(())

    def raw(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        centred = z - mean
        phi = centred * coef if coef.ndim == 1 else centred[:, :, None] * coef.T[None, :, :]
        return phi, base

    return raw


def margin(final: Any, z: np.ndarray) -> np.ndarray | None:
    """The model's margin (log-odds, decision function), or None if it has none."""
    module = type(final).__module__
    if module.startswith("xgboost"):
        return np.asarray(final.predict(z, output_margin=True))
    if module.startswith("lightgbm"):
        return np.asarray(final.predict(z, raw_score=True))
    if callable(getattr(final, "decision_function", None)):
        return np.asarray(final.decision_function(z))
    return None


class Exact:
    """A raw explainer plus the output space it was found to add up to."""

    def __init__(self, method: str, raw: Raw, final: Any, classifier: bool) -> None:
        self.method = method
        self.raw = raw
        self.final = final
        self.classifier = classifier
        self.space: str | None = None  # "probability" | "margin" | "value", set on first use

    def _outputs(self, space: str, z: np.ndarray) -> np.ndarray | None:
        if space == "probability":
            proba = getattr(self.final, "predict_proba", None)
            return np.asarray(proba(z)) if callable(proba) else None
        if space == "margin":
            return margin(self.final, z)
        return np.asarray(self.final.predict(z))

    def __call__(
        self, z: np.ndarray, k: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``(contributions (n, d), base (n,), output (n,))`` for classes ``k``; None if inexact."""
        phi, base = self.raw(z)
        total = base + phi.sum(axis=1)
        spaces = (
            [self.space]
            if self.space
            else (["probability", "margin"] if self.classifier else ["value"])
        )
        for space in spaces:
            assert space is not None
            got = self._outputs(space, z)
            if got is None:
                continue
            tolerance = TOLERANCE
            if got.dtype == np.float32:
                tolerance = max(TOLERANCE, FLOAT32_ULPS * float(np.abs(got).max(initial=1.0)))
            out = np.asarray(got, dtype=float)
            if out.ndim == 2 and out.shape[1] == 2 and total.ndim == 1 and space == "probability":
                out = out[:, 1]  # a single-output explanation of a binary probability
            if (
                (out.ndim == 2 and k is None)
                or out.shape != total.shape
                or not np.allclose(out, total, rtol=0, atol=tolerance)
            ):
                continue
            self.space = space
            return _select(phi, base, out, k, space)
        return None


def _select(
    phi: np.ndarray, base: np.ndarray, out: np.ndarray, k: np.ndarray | None, space: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's numbers for its predicted class ``k`` (regressors: as they are)."""
    n = len(phi)
    rows = np.arange(n)
    if out.ndim == 2:  # one output per class
        assert k is not None
        return phi[rows, :, k], base[k], out[rows, k]
    base_n = np.full(n, float(np.asarray(base).reshape(-1)[0]))
    if k is None:
        return phi, base_n, out
    # One output for two classes, about the second: the first's is its complement (1 - p)
    # or its negation (-margin); both keep base + sum == output.
    first = k == 0
    sign = np.where(first, -1.0, 1.0)
    shift = np.where(first, 1.0 if space == "probability" else 0.0, 0.0)
    return phi * sign[:, None], shift + sign * base_n, shift + sign * out
