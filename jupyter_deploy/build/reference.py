"""The reference profile stored with each Bento: what "no drift" looks like.

Made at deploy time from the training sample (``sample=``) or from a separate
``reference=`` data set: the inputs' per-feature profile, and the profile of the
model's own predictions on those rows (classes for a classifier, values for a
regressor). Replicas compare what they serve with it (:mod:`jupyter_deploy.drift`).
With it, the global importance of the reference: the mean |contribution| of each input
column over up to :data:`IMPORTANCE_ROWS` of its rows, explained by the same explainer
the replicas build (:mod:`jupyter_deploy.monitoring.importance`), for at most
:data:`IMPORTANCE_S` seconds of the deploy.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from ..errors import InvalidModelError

REFERENCE_FILE = "reference.json"  # beside the model in the Bento
MAX_ROWS = 10_000  # a larger reference is subsampled (seeded): profiles need no more
IMPORTANCE_ROWS = 200  # mean |contribution| per column settles well before this
IMPORTANCE_S = 3.0


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


def build_reference(
    model: Any, data: Any, schema: Any, label: str, importance: bool = True
) -> dict[str, Any]:
    """The profile of ``data`` and of ``model.predict(data)``, JSON-ready.

    Bad reference data raises :class:`InvalidModelError`; data the profiler cannot read
    gives a reference without profiles and the ``reason`` drift will show.
    """
    try:
        return _build(model, data, schema, label, importance)
    except InvalidModelError:
        raise
    except Exception as exc:  # an exotic model or dtype must not stop the deploy
        return {"task": task_of(model), "reason": f"the reference could not be profiled: {exc}"}


def _build(model: Any, data: Any, schema: Any, label: str, importance: bool) -> dict[str, Any]:
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
    background = summarise(frame)
    out = {
        "rows": len(frame),
        "task": task,
        "inputs": ReferenceProfile.from_frame(frame).to_dict(),
        "predictions": outputs.to_dict(),
        # A few weighted rows the model-agnostic explainer measures against (not raw rows).
        "background": background,
    }
    if importance:
        out["importance"] = reference_importance(model, frame, schema, background)
    return out


def reference_importance(model: Any, frame: Any, schema: Any, background: Any) -> dict[str, Any]:
    """``{"rows", "output", "mean_abs": {column: mean |contribution|}}``, or a ``reason``."""
    from .._bento.runtime import ModelRuntime
    from ..explain.explainer import Explainer
    from ..monitoring.importance import Importance

    try:
        runtime = ModelRuntime(model, schema, max_batch_rows=IMPORTANCE_ROWS)
        rows = frame.sample(min(IMPORTANCE_ROWS, len(frame)), random_state=0)
        # The rows as a request carries them, so the explainer sees what a replica's does.
        x = runtime.to_model_input(json.loads(rows.to_json(orient="values", date_format="iso")))
        explainer = Explainer.build(model, schema.names, runtime.to_model_input, background)
        deadline, total = time.monotonic() + IMPORTANCE_S, Importance()
        for i in range(0, len(x), 25):  # chunks, so a slow sampled method keeps what it did
            chunk = x.iloc[i : i + 25] if hasattr(x, "iloc") else x[i : i + 25]
            try:
                explained = explainer.explain(chunk, deadline)
            except Exception:
                if total.rows:
                    break
                raise
            total.merge(Importance.of(explained.contributions, explained.output))
            if time.monotonic() > deadline:
                break
        return total.to_reference()
    except Exception as exc:  # explaining is a bonus: it never stops a deploy
        return {"reason": f"the reference's importance could not be computed: {exc}"}
