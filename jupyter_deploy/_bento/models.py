"""How a Bento's model is loaded and called, by runtime; shipped as ``jd_models.py``.

``jd_runtime.py`` validates the payload and builds the model's input the same way
whatever runs the model; this module gives it the object that ``predict``\\ s:

- ``python``: the captured object itself, unpickled (``model.pkl``), as it ran in the
  kernel.
- ``onnx``: the ONNX graph converted at deploy time and checked against the model
  (``model.onnx``), run by onnxruntime. It answers like the model: labels from the graph's
  label output, probabilities without ZipMap, the classes and the output shape the model
  had, and a graph that refuses an input is a 422 like a model that does.

XGBoost and LightGBM models are also saved in their libraries' own formats
(``model.ubj``, ``model.txt``: readable by any later version of the library, unlike a
pickle). Their scikit-learn estimators still load from the pickle, which keeps the
wrapper's classes and label encoding; a native ``Booster`` loads from its native file as a
:class:`BoosterModel`, whose ``predict`` is the Booster's own (probabilities for a
classification objective), taking the runtime's arrays and frames without a DMatrix.

``serving.json`` in the model folder says which runtime the replicas use and which
native file there is; a Bento without it predates both and runs its pickle. Standalone
like the runtime: standard library, numpy, cloudpickle, onnxruntime for ``onnx`` and the
booster's library for its native file; never jupyter_deploy.
"""

from __future__ import annotations

import json
import warnings
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


# Library -> the file its boosters are saved as, in the library's own format.
NATIVE_FILES = {"xgboost": "model.ubj", "lightgbm": "model.txt"}


def load(path: Path, columns: list[str], runtime: str | None = None) -> Any:
    """The model in ``path`` as ``runtime`` runs it (default: what ``serving.json`` says)."""
    config = serving_config(path)
    runtime = runtime or config["runtime"]
    if runtime == "onnx":
        return OnnxModel(path, config["onnx"], columns)
    if runtime != "python":
        raise ValueError(f"unknown runtime {runtime!r}; this Bento knows {RUNTIMES}")
    native = config.get("native")
    if native and native["booster"]:
        return BoosterModel(load_booster(path / native["file"], native["library"]))
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


# What scikit-learn warns, on every call, when a model fitted on a frame is given an array.
_NAMES_WARNING = "X does not have valid feature names"


def answers_arrays(model: Any, columns: list[str], dtype: str | None) -> bool:
    """Whether ``model`` answers a ``dtype`` matrix of ``columns`` as it answers the frame of
    it, so that a serving runtime may skip the frame (``ModelRuntime.serve_arrays``).

    scikit-learn's checks of a frame cost ~0.6 ms a call (1.9 with pandas 3: narwhals,
    dtype and sparse checks), twice a whole iris pipeline's ``predict`` of a matrix. Only
    for a model whose first step is scikit-learn's and was fitted on a frame of exactly
    these columns (the runtime has checked every name, in order), and only if every method
    gives the same answer both ways on fixed probe rows (a ``ColumnTransformer`` selecting
    by name, or a function indexing the frame, fails that and keeps the frame). scikit-learn
    then warns on every call that the array has no names: that warning alone is silenced,
    process-wide, which only serving processes (replicas, jobs, consumers) ask for."""
    first = model
    while hasattr(first, "steps"):  # a Pipeline: its first step reads the input
        first = first.steps[0][1]
    names = getattr(model, "feature_names_in_", None)
    if dtype is None or names is None or [str(n) for n in names] != columns:
        return False
    if not type(first).__module__.startswith("sklearn."):
        return False
    if not any(f[1] is not None and _NAMES_WARNING in f[1].pattern for f in warnings.filters):
        warnings.filterwarnings("ignore", _NAMES_WARNING, UserWarning, "sklearn")
    import pandas as pd

    width = len(columns)
    rows = [np.zeros(width), np.ones(width), np.random.default_rng(0).normal(0, 3, (6, width))]
    probe = np.vstack(rows).astype(dtype)
    frame = pd.DataFrame(probe, columns=columns)
    methods = [getattr(model, m) for m in ("predict", "predict_proba") if hasattr(model, m)]
    try:
        return all(np.array_equal(np.asarray(f(frame)), np.asarray(f(probe))) for f in methods)
    except Exception:  # any refusal of the array means: keep the frame
        return False


def native_library(model: Any) -> str | None:
    """``xgboost`` or ``lightgbm`` for their Boosters and scikit-learn estimators, else None."""
    library = type(model).__module__.split(".")[0]
    return library if library in NATIVE_FILES else None


def booster_of(model: Any) -> Any:
    """The native Booster inside ``model`` (itself when it is one)."""
    if hasattr(model, "get_booster"):  # XGBoost's scikit-learn API
        return model.get_booster()
    return getattr(model, "booster_", model)  # LightGBM's, else a Booster


def native_bytes(booster: Any, library: str) -> bytes:
    """``booster`` in its library's own format (what :func:`load_booster` reads)."""
    if library == "xgboost":
        return bytes(booster.save_raw("ubj"))
    return str(booster.model_to_string()).encode()


def load_booster(file: Path, library: str) -> Any:
    if library == "xgboost":
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(str(file))
        return booster
    import lightgbm

    return lightgbm.Booster(model_file=str(file))


class BoosterModel:
    """A native XGBoost or LightGBM Booster with a ``predict`` that takes arrays and frames.

    ``predict`` gives what the Booster's own does (XGBoost's ``inplace_predict`` is its
    ``predict`` without building a DMatrix); ``n_features_in_`` and, when the Booster has
    real column names, ``feature_names_in_`` let the schema be inferred without a sample.
    """

    native_booster = True  # what the ONNX export looks for (not a scikit-learn estimator)

    def __init__(self, booster: Any) -> None:
        self.booster = booster
        self.library = native_library(booster) or "xgboost"
        if self.library == "xgboost":
            names = booster.feature_names
            self.n_features_in_ = booster.num_features()
        else:
            names = booster.feature_name()
            self.n_features_in_ = booster.num_feature()
            if names == [f"Column_{i}" for i in range(len(names))]:
                names = None  # LightGBM's names for a booster trained without any
        if names:
            self.feature_names_in_ = np.asarray(names, dtype=object)

    def predict(self, x: Any) -> np.ndarray:
        if self.library == "xgboost":
            return np.asarray(self.booster.inplace_predict(x))
        return np.asarray(self.booster.predict(x))
