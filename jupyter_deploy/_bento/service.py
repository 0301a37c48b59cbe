"""BentoML service of a Bento built by jupyter_deploy (copied into the Bento as-is).

``bentoml serve <tag>`` serves it without jupyter_deploy installed: it reads the model
tag and service name from ``jd_bento.json`` beside it and delegates validation and
prediction to ``jd_runtime.py``, the same runtime the Ray Serve replicas use.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path
from typing import Any

import bentoml
from bentoml.exceptions import BentoMLException
from jd_runtime import InputError, ModelRuntime

CONFIG = json.loads((Path(__file__).parent / "jd_bento.json").read_text())


class ClientError(BentoMLException):
    """Carries the runtime's 4xx status through BentoML's error handling."""

    def __init__(self, err: InputError) -> None:
        super().__init__(str(err))
        self.error_code = HTTPStatus(err.status)


@bentoml.service(name=CONFIG["service_name"])
class ModelService:
    model_ref = bentoml.models.BentoModel(CONFIG["model_tag"])

    def __init__(self) -> None:
        self.runtime = ModelRuntime.from_dir(self.model_ref.path, CONFIG["max_batch_rows"])
        self.runtime.serve_arrays()

    def _call(self, method: str, instances: list[Any]) -> dict[str, Any]:
        try:
            return self.runtime.call(method, instances)
        except InputError as err:
            raise ClientError(err) from None

    @bentoml.api
    def predict(self, instances: list[Any]) -> dict[str, Any]:
        """Predict one value per instance (records with column names, or rows)."""
        return self._call("predict", instances)

    if CONFIG["predict_proba"]:

        @bentoml.api
        def predict_proba(self, instances: list[Any]) -> dict[str, Any]:
            """Class probabilities per instance, with the class labels."""
            return self._call("predict_proba", instances)
