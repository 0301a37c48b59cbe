"""The benchmark's model and payloads, and the in-process compute floor.

Every server in the comparison answers for the very same fitted estimator and the very same
request bodies, so the differences measured are the serving stack's and nothing else.
"""

from __future__ import annotations

import json
import pickle
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Rows per request in the two payloads: one row is the interactive case, 32 rows the
# small-batch case (enough to make the model's own cost visible next to the HTTP cost).
PAYLOAD_ROWS = (1, 32)


@dataclass(frozen=True)
class BenchModel:
    """A fitted estimator plus the data the harness sends to it."""

    estimator: Any
    features: Any  # 2-D numpy array, iris features
    probe_row: list[float]  # a row on which `estimator` and `variant` disagree

    def probe_body(self) -> str:
        """Request body with the probe row, on which the two model versions disagree."""
        return json.dumps({"instances": [self.probe_row]})

    def body(self, rows: int) -> str:
        """JSON request body ``{"instances": [...]}`` with ``rows`` rows."""
        picked = [self.features[i % len(self.features)].tolist() for i in range(rows)]
        return json.dumps({"instances": picked})


def fit_models() -> tuple[BenchModel, Any]:
    """Fit the benchmark model and a second *version* that answers differently.

    The second version is what redeploy tests roll out: a probe row on which the two
    disagree tells, from the outside, which version answered.
    """
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    first = LogisticRegression(max_iter=1000).fit(features, labels)
    # Relabelled targets make a model of the same type and cost with other answers.
    variant = LogisticRegression(max_iter=1000).fit(features, (labels + 1) % 3)
    disagree = np.flatnonzero(first.predict(features) != variant.predict(features))
    probe = features[int(disagree[0])].tolist()
    return BenchModel(first, features, probe), variant


def save_pickle(obj: Any, path: Path) -> Path:
    """Write ``obj`` for a driver subprocess; pickle keeps the exact fitted coefficients."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))
    return path


def _time_calls(fn: Any, calls: int) -> float:
    """Median seconds per call of ``fn`` over ``calls`` calls, timed in groups of ten."""
    samples = []
    for _ in range(max(1, calls // 10)):
        start = time.perf_counter()
        for _ in range(10):
            fn()
        samples.append((time.perf_counter() - start) / 10)
    return statistics.median(samples)


def inprocess_floor(model: BenchModel, calls: int) -> dict[str, float]:
    """Seconds per call for ``predict`` alone and for parse + predict + serialise.

    The first is the model's own cost; the second is the least work any HTTP server must
    do per request. Both are the floor against which the servers' latencies are read.
    """
    import numpy as np

    out: dict[str, float] = {}
    for rows in PAYLOAD_ROWS:
        body = model.body(rows)
        matrix = np.asarray(json.loads(body)["instances"])

        def predict_only(m: Any = matrix) -> None:
            model.estimator.predict(m)

        def full_request(b: str = body) -> None:
            rows_in = np.asarray(json.loads(b)["instances"])
            json.dumps({"predictions": model.estimator.predict(rows_in).tolist()})

        out[f"predict_{rows}row_s"] = _time_calls(predict_only, calls)
        out[f"json_predict_{rows}row_s"] = _time_calls(full_request, calls)
    return out
