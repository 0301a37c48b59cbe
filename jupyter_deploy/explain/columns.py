"""A pipeline's transformed features traced back to the input columns they come from.

The exact explainers work on what the final estimator sees (scaled numbers, one-hot
parts); a user reads their own column names. Each transformed feature is mapped to the
one input column whose name it carries in scikit-learn's ``get_feature_names_out``
(``sex`` -> ``sex_F``, ``cat__sex_F``, ``missingindicator_sex``; the longest name wins),
and the map is then checked by perturbing each input column of the background rows: a
feature that changes with a column it is not mapped to means the steps mix columns (PCA,
polynomial terms), and then there is no exact per-column answer (``None``: the caller
falls back to the model-agnostic explainer on the input columns).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np


def split(model: Any) -> tuple[Any, Any]:
    """``(steps before the last, last step)`` of a Pipeline; ``(None, model)`` otherwise."""
    steps = getattr(model, "steps", None)
    if not steps or not hasattr(model, "__getitem__") or len(steps) < 2:
        return None, model
    return model[:-1], model[-1]


def dense(z: Any) -> np.ndarray:
    """A transformer's output as a float matrix (sparse one-hot output included)."""
    if hasattr(z, "toarray"):
        z = z.toarray()
    elif hasattr(z, "to_numpy"):
        z = z.to_numpy()
    return np.asarray(z, dtype=float)


def _tails(name: str) -> list[str]:
    """``name`` and what follows each ``__`` (ColumnTransformer's ``step__`` prefixes)."""
    return [name] + [name[m.end() :] for m in re.finditer("__", name)]


def _source(name: str, inputs: list[str]) -> int | None:
    best, best_len = None, -1
    tails = _tails(name)
    for j, col in enumerate(inputs):
        hit = any(
            t == col or t.startswith(col + "_") or t == "missingindicator_" + col for t in tails
        )
        if hit and len(col) > best_len:
            best, best_len = j, len(col)
    return best


def source_map(pre: Any, inputs: list[str], background: Any | None) -> np.ndarray | None:
    """For each transformed feature, the index of its input column; None if not separable.

    ``inputs`` are the model's input column names (the schema's); a pipeline fitted on an
    array names them ``x0, x1, ...``, which are mapped by position. ``background`` is a
    model input (frame or array) of a few rows to check the map on.
    """
    try:
        names = [str(n) for n in pre.get_feature_names_out()]
    except Exception:  # a step without feature names: cannot be traced
        return None
    fitted = getattr(pre, "feature_names_in_", None)
    own = [str(c) for c in fitted] if fitted is not None else [f"x{i}" for i in range(len(inputs))]
    if len(own) != len(inputs):
        return None
    mapping = [_source(n, own) for n in names]
    if any(m is None for m in mapping):
        return None
    out = np.asarray(mapping, dtype=int)
    if background is not None and not _consistent(pre, out, background):
        return None
    return out


def _consistent(pre: Any, mapping: np.ndarray, background: Any) -> bool:
    """Perturb each input column alone: only the features mapped to it may change."""
    base = dense(pre.transform(background))
    if base.shape[1] != len(mapping) or len(base) < 2:
        return base.shape[1] == len(mapping)
    for j in range(np.shape(background)[1]):
        moved = _rolled(background, j)
        if moved is None:
            continue
        changed = np.flatnonzero(np.any(~np.isclose(dense(pre.transform(moved)), base), axis=0))
        if np.any(mapping[changed] != j):
            return False
    return True


def _rolled(x: Any, j: int) -> Any:
    """``x`` with column ``j``'s values moved one row down (the others untouched)."""
    if hasattr(x, "iloc"):
        out = x.copy()
        out.iloc[:, j] = np.roll(x.iloc[:, j].to_numpy(), 1)
        return out
    out = np.array(x, copy=True)
    out[:, j] = np.roll(out[:, j], 1)
    return out
