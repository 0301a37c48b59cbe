"""Model-agnostic contributions: Shapley values sampled over column orderings.

For any model with ``predict`` (a regressor) or ``predict_proba`` (a classifier: the
probability of the predicted class). The background is a handful of weighted rows
summarised from the deploy-time sample (:mod:`.background`). For one ordering of the
columns, the instance's values replace the background's one column at a time and each
column gets the change of the (weighted) mean output; these telescope, so every
ordering's contributions add up to ``f(x) - E[f(background)]`` exactly, and so does
their mean. Orderings come in antithetic pairs (an order and its reverse), which cancels
much of the sampling noise. Each ordering is one model call of ``(columns + 1) x rows``
inputs; the deadline is checked between calls, so a slow model gives up with
:class:`ExplainTimeout` instead of holding a thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ExplainTimeout

PERMUTATIONS = 10  # 5 antithetic pairs; exact for 2 columns, close for a dozen
SEED = 0


def _stack(background: Any, x_row: Any, order: np.ndarray) -> Any:
    """Background rows with the first t columns of ``order`` set from ``x_row``, t = 0..d."""
    d = len(order)
    if hasattr(background, "iloc"):
        import pandas as pd

        blocks = []
        for t in range(d + 1):
            block = background.copy()
            for j in order[:t]:
                block.iloc[:, j] = x_row.iloc[0, j]
            blocks.append(block)
        return pd.concat(blocks, ignore_index=True)
    blocks = []
    for t in range(d + 1):
        block = np.array(background, copy=True)
        block[:, order[:t]] = x_row[0, order[:t]]
        blocks.append(block)
    return np.concatenate(blocks)


def sampled(
    f: Callable[[Any, int], np.ndarray],
    x: Any,
    background: Any,
    weights: np.ndarray,
    deadline: float,
    what: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(contributions (n, d), base (n,), output (n,))`` of ``f`` for each row of ``x``.

    ``f(rows, i)`` gives the explained output of instance ``i``'s class for ``rows``.
    """
    rng = np.random.default_rng(SEED)
    n, d = np.shape(x)
    k = len(weights)
    w = weights / weights.sum()
    phi, base, out = np.zeros((n, d)), np.zeros(n), np.zeros(n)
    for i in range(n):
        row = x.iloc[[i]] if hasattr(x, "iloc") else np.asarray(x)[[i]]
        orders: list[np.ndarray] = []
        for _ in range(PERMUTATIONS // 2):
            first = rng.permutation(d)
            orders += [first, first[::-1]]
        for done, order in enumerate(orders):
            if time.monotonic() > deadline:
                raise ExplainTimeout(
                    f"explaining {what} took longer than this deployment's explain_timeout_s "
                    f"(instance {i + 1} of {n}, ordering {done} of {len(orders)}); send fewer "
                    "instances, or redeploy with a larger explain_timeout_s"
                )
            values = f(_stack(background, row, order), i).reshape(d + 1, k) @ w
            phi[i, order] += np.diff(values)
            base[i], out[i] = values[0], values[-1]
        phi[i] /= len(orders)
    return phi, base, out
