"""How a Bento's model is loaded and called, by runtime; shipped as ``jd_models.py``.

``jd_runtime.py`` validates the payload and builds the model's input the same way
whatever runs the model; this module gives it the object that ``predict``\\ s:

- ``python``: the captured object itself, unpickled (``model.pkl``), as it ran in the
  kernel.
- ``onnx``: the ONNX graph converted at deploy time and checked against the model
  (``model.onnx``), run by onnxruntime. It answers like the model: labels from the graph's
  label output, probabilities without ZipMap, the classes and the output shape the model
  had, and a graph that refuses an input is a 422 like a model that does.

``serving.json`` in the model folder says which runtime the replicas use; a Bento without
it predates the choice and runs its pickle. Standalone like the runtime: standard
library, numpy, cloudpickle and (for ``onnx``) onnxruntime, never jupyter_deploy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

MODEL_FILE = "model.pkl"
SERVING_FILE = "serving.json"
GRAPH_FILE = "model.onnx"
RUNTIMES = ("python", "onnx")


def serving_config(path: Path) -> dict[str, Any]:
    """The model folder's ``serving.json``; ``{"runtime": "python"}`` when it has none."""
    file = path / SERVING_FILE
    return json.loads(file.read_text()) if file.exists() else {"runtime": "python"}


def load(path: Path, columns: list[str], runtime: str | None = None) -> Any:
    """The model in ``path`` as ``runtime`` runs it (default: what ``serving.json`` says)."""
    config = serving_config(path)
    runtime = runtime or config["runtime"]
    if runtime == "onnx":
        return OnnxModel(path, config["onnx"], columns)
    if runtime != "python":
        raise ValueError(f"unknown runtime {runtime!r}; this Bento knows {RUNTIMES}")
    import cloudpickle

    with open(path / MODEL_FILE, "rb") as f:
        return cloudpickle.load(f)


class OnnxModel:
    """An ONNX graph with the model's interface: ``predict``, ``predict_proba``, ``classes_``.

    ``config`` is what the deploy wrote: the column -> graph input map with the numpy
    dtype each input takes, the output names, the classes, whether ``predict`` returned
    one value per row (a ``[N]`` array, not ``[N, 1]``) and whether probabilities are
    served.
    """

    def __init__(self, path: Path, config: dict[str, Any], columns: list[str]) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        # One thread per call: a replica serves many small requests at once, and ORT's
        # default (a thread per core) makes those threads fight over the cores.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(path / config["graph"]), opts, providers=["CPUExecutionProvider"]
        )
        position = {name: i for i, name in enumerate(columns)}
        self._feeds = [
            (item["column"], position[item["column"]], item["input"], item["dtype"])
            for item in config["inputs"]
        ]
        self._outputs = config["outputs"]
        self._flat = config["flat"]
        if config.get("classes") is not None:
            self.classes_ = np.asarray(config["classes"])
        if config.get("proba"):
            self.predict_proba = self._proba  # only when the model had it

    def _feed(self, x: Any) -> dict[str, np.ndarray]:
        frame = hasattr(x, "columns")
        out = {}
        for column, i, name, dtype in self._feeds:
            values = x[column].to_numpy() if frame else x[:, i]
            if dtype == "str":
                values = np.asarray([str(v) for v in values], dtype=object)
            out[name] = np.asarray(values, dtype=None if dtype == "str" else dtype).reshape(-1, 1)
        return out

    def _run(self, output: str, x: Any) -> np.ndarray:
        try:
            (result,) = self._session.run([output], self._feed(x))
        except Exception as exc:  # onnxruntime's errors are not ValueErrors
            raise ValueError(str(exc).strip().splitlines()[0][:300]) from None
        return np.asarray(result)

    def predict(self, x: Any) -> np.ndarray:
        labels = self._run(self._outputs[0], x)
        return labels.reshape(-1) if self._flat else labels

    def _proba(self, x: Any) -> np.ndarray:
        return self._run(self._outputs[1], x)
