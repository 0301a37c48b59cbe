"""The aggregator's quality state without Ray: windows, versions, feedback scores."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jupyter_deploy.monitoring.drift import ReferenceProfile
from jupyter_deploy.monitoring.metrics import Observed
from jupyter_deploy.monitoring.profile import PREDICTION
from jupyter_deploy.monitoring.quality import Quality
from jupyter_deploy.replica.observations import Observations, VersionReference


def _reference(values: np.ndarray, task: str) -> dict:
    frame = pd.DataFrame({"x": values})
    kind = "categorical" if task == "classification" else "numeric"
    return {
        "task": task,
        "inputs": ReferenceProfile.from_frame(frame).to_dict(),
        "predictions": ReferenceProfile.from_values(PREDICTION, values * 2, kind).to_dict(),
    }


def test_regression_feedback_gives_mae_and_rmse() -> None:
    rng = np.random.default_rng(0)
    quality = Quality()
    quality.register(1, _reference(rng.normal(size=500), "regression"))
    quality.push(1, Observed({"a": [1.0, 2.0], "b": [4.0]}))
    result = quality.feedback([{"request_id": "a", "label": [2.0, 2.0]},
                               {"request_id": "b", "label": 1.0},
                               {"request_id": "a", "label": [1.0]},
                               {"request_id": "zz", "label": 3}])  # fmt: skip
    assert result == {"matched": 2, "unknown": ["zz"], "wrong_length": ["a"]}
    accuracy = quality.report()["accuracy"]
    assert accuracy["labels"] == 3
    assert accuracy["mae"] == (1 + 0 + 3) / 3
    assert accuracy["rmse"] == ((1 + 0 + 9) / 3) ** 0.5


def test_the_report_follows_the_serving_version_and_its_own_window() -> None:
    rng = np.random.default_rng(1)
    quality = Quality()
    observations = Observations()
    for version, shift in ((1, 0.0), (2, 3.0)):
        ref = _reference(rng.normal(size=2000), "regression")
        quality.register(version, ref)
        observations.references[version] = VersionReference(
            ["x"], ReferenceProfile.from_dict(ref["inputs"]),
            ReferenceProfile.from_dict(ref["predictions"]),
        )  # fmt: skip
        for i in range(10):
            x = rng.normal(shift, 1.0, size=(20, 1))
            observations.add(version, x, x[:, 0] * 2, f"v{version}-{i}")
        quality.push(version, observations.drain(version) or Observed())
    moved = quality.report()
    assert moved["version"] == 2 and moved["features"][0]["n"] == 200
    assert moved["features"][0]["drifted"]
    quality.register(1, {})  # a rollback: v1 loads again (its reference is already known)
    back = quality.report()
    assert back["version"] == 1 and not back["features"][0]["drifted"]
    assert quality.memory.get("v1-0")[0] == 1 and len(quality.memory) == 20
