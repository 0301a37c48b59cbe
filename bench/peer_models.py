"""The peer comparison's two models and their request bodies.

``iris``: ``StandardScaler + LogisticRegression`` fit on the iris DataFrame, the light
model whose requests cost the serving stack more than the model. ``forest``: a 200-tree
``RandomForestClassifier`` on the same DataFrame, compute-bound (``predict`` of one row
walks 200 trees). Both take records (``{"instances": [{"sepal length (cm)": ...}]}``),
as a data scientist's client sends them.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

MODELS = ("iris", "forest")


@cache
def fit(name: str) -> tuple[Any, Any]:
    """``(fitted estimator, training DataFrame)`` for model ``name``."""
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = load_iris(as_frame=True)
    x, y = frame.data, frame.target
    if name == "iris":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    elif name == "forest":
        model = RandomForestClassifier(n_estimators=200, random_state=0, n_jobs=1)
    else:
        raise ValueError(name)
    return model.fit(x, y), x


def records(sample: Any, rows: int) -> list[dict[str, float]]:
    """``rows`` records taken in order from the training frame (wrapping around)."""
    picked = sample.iloc[[i % len(sample) for i in range(rows)]]
    return [{str(k): float(v) for k, v in r.items()} for r in picked.to_dict("records")]


def records_body(sample: Any, rows: int) -> str:
    return json.dumps({"instances": records(sample, rows)})


def expected(name: str, rows: int) -> list[int]:
    """The predictions every server must answer for ``records_body(..., rows)``."""
    import pandas as pd

    model, sample = fit(name)
    return [int(v) for v in model.predict(pd.DataFrame(records(sample, rows)))]
