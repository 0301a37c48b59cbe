"""The reference profile stored with each Bento: what "no drift" looks like.

Made at deploy time from the training sample (``sample=``) or from a separate
``reference=`` data set: the inputs' per-feature profile, and the profile of the
model's own predictions on those rows (classes for a classifier, values for a
regressor). Replicas compare what they serve with it (:mod:`jupyter_deploy.drift`).
"""

from __future__ import annotations

import sys
from typing import Any

from ..errors import InvalidModelError

REFERENCE_FILE = "reference.json"  # beside the model in the Bento
MAX_ROWS = 10_000  # a larger reference is subsampled (seeded): profiles need no more


def task_of(model: Any) -> str:
    """``classification`` or ``regression``, as scikit-learn (or the model's API) tells."""
    if "sklearn" in sys.modules:
        from sklearn.base import BaseEstimator, is_classifier

        if isinstance(model, BaseEstimator) and is_classifier(model):
            return "classification"
    if hasattr(model, "classes_") or callable(getattr(model, "predict_proba", None)):
        return "classification"
    return "regression"


def as_frame(data: Any, names: list[str]) -> Any:
    """``data`` (DataFrame or 2-D array) as a DataFrame with the schema's column names."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    arr = np.asarray(data)
    if arr.ndim != 2 or arr.shape[1] != len(names):
        raise InvalidModelError(
            f"The reference data must be 2-D with {len(names)} columns, got shape {arr.shape}."
        )
    return pd.DataFrame(arr, columns=names)


def build_reference(model: Any, data: Any, schema: Any, label: str) -> dict[str, Any]:
    """The profile of ``data`` and of ``model.predict(data)``, JSON-ready.

    Bad reference data raises :class:`InvalidModelError`; data the profiler cannot read
    gives a reference without profiles and the ``reason`` drift will show.
    """
    try:
        return _build(model, data, schema, label)
    except InvalidModelError:
        raise
    except Exception as exc:  # an exotic model or dtype must not stop the deploy
        return {"task": task_of(model), "reason": f"the reference could not be profiled: {exc}"}


def _build(model: Any, data: Any, schema: Any, label: str) -> dict[str, Any]:
    from ..explain.background import summarise
    from ..monitoring.profile import PREDICTION, ReferenceProfile

    names = schema.names
    frame = as_frame(data, names)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise InvalidModelError(f"The reference data lacks column(s) {missing} of {label}.")
    frame = frame[names]
    if len(frame) > MAX_ROWS:
        frame = frame.sample(MAX_ROWS, random_state=0)
    task = task_of(model)
    # The model sees what the runtime gives it: a frame, or an array for array schemas.
    predictions = model.predict(frame if schema.frame else frame.to_numpy())
    outputs = ReferenceProfile.from_values(
        PREDICTION, predictions, "categorical" if task == "classification" else "numeric"
    )
    return {
        "rows": len(frame),
        "task": task,
        "inputs": ReferenceProfile.from_frame(frame).to_dict(),
        "predictions": outputs.to_dict(),
        # A few weighted rows the model-agnostic explainer measures against (not raw rows).
        "background": summarise(frame),
    }
