"""Capture a live model from the kernel: check it, infer its input schema, pickle it.

The pickle is made with cloudpickle so classes and functions defined in the notebook
itself (``__main__``) travel by value; while pickling, every object's module is recorded,
which tells :mod:`jupyter_deploy.environment` which packages the Bento must pin.
"""

from __future__ import annotations

import io
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from .._bento import models as loaders
from .._bento.runtime import Column, InputError, InputSchema, ModelRuntime
from ..errors import InvalidModelError, UnknownVariableError

SMOKE_ROWS = 5


@dataclass
class ModelCapture:
    """A model taken from the kernel, ready to be packaged."""

    model: Any
    model_bytes: bytes
    schema: InputSchema
    methods: list[str]
    framework: str
    modules: set[str] = field(default_factory=set)
    variable: str | None = None
    notebook: str | None = None
    # Profile of the inputs and predictions for drift (None: deployed without data).
    reference: dict[str, Any] | None = None
    # The model folder's serving.json (what the replicas run, which native file there is)
    # and the files beside the pickle: a booster's native file, an ONNX graph.
    serving: dict[str, Any] = field(default_factory=lambda: {"runtime": "python"})
    runtime_files: dict[str, bytes] = field(default_factory=dict)
    # How the ONNX graph compared with the model at deploy time (runtime "onnx").
    parity: dict[str, Any] | None = None

    @property
    def runtime(self) -> str:
        return str(self.serving["runtime"])

    @property
    def model_class(self) -> str:
        model = self.model.booster if isinstance(self.model, loaders.BoosterModel) else self.model
        cls = type(model)
        return f"{cls.__module__}.{cls.__qualname__}"


def resolve(target: Any, namespace: dict[str, Any] | None) -> tuple[Any, str | None]:
    """Return ``(object, variable name)`` for an object or a variable name in ``namespace``."""
    if not isinstance(target, str):
        return target, None
    ns = namespace or {}
    head, *attrs = target.split(".")
    if head not in ns:
        candidates = deployable_variables(ns)
        hint = f" Deployable objects here: {', '.join(candidates)}." if candidates else ""
        raise UnknownVariableError(f"No variable named {head!r} in the kernel.{hint}")
    obj = ns[head]
    for attr in attrs:
        if not hasattr(obj, attr):
            raise UnknownVariableError(f"{head!r} has no attribute {attr!r} (in {target!r}).")
        obj = getattr(obj, attr)
    return obj, target


def deployable_variables(namespace: dict[str, Any]) -> list[str]:
    """Names of the objects in ``namespace`` that have a callable ``predict``."""
    return sorted(
        name
        for name, value in namespace.items()
        if not name.startswith("_")
        and not isinstance(value, type)
        and callable(getattr(value, "predict", None))
    )


def capture(
    model: Any,
    *,
    sample: Any = None,
    reference: Any = None,
    allow_nan: bool = False,
    variable: str | None = None,
    notebook: str | None = None,
    importance: bool = True,
) -> ModelCapture:
    """Check ``model``, infer its schema and pickle it. Raise InvalidModelError if unfit.

    ``importance``: explain rows of the reference data for its global importance."""
    label = variable or type(model).__name__
    if isinstance(model, type) or not callable(getattr(model, "predict", None)):
        raise InvalidModelError(
            f"{label} ({type(model).__name__}) has no predict method; deploy a fitted "
            "estimator or any object with .predict(X)."
        )
    _check_fitted(model, label)
    model_bytes, modules = pickle_with_modules(model, label)
    framework = type(model).__module__.split(".")[0]
    serving: dict[str, Any] = {"runtime": "python"}
    files = {}
    library = loaders.native_library(model)
    if library is not None:  # a booster: its library's own format too, not only a pickle
        booster = loaders.booster_of(model)
        file = loaders.NATIVE_FILES[library]
        files[file] = loaders.native_bytes(booster, library)
        serving["native"] = {"library": library, "file": file, "booster": booster is model}
        if booster is model:  # a bare Booster predicts on a DMatrix only: adapt it
            model = loaders.BoosterModel(booster)
    schema = infer_schema(model, sample, allow_nan=allow_nan, label=label)
    methods = [m for m in ("predict", "predict_proba") if callable(getattr(model, m, None))]
    cap = ModelCapture(
        model=model,
        model_bytes=model_bytes,
        schema=schema,
        methods=methods,
        framework=framework,
        modules=modules,
        variable=variable,
        notebook=notebook or os.environ.get("JPY_SESSION_NAME"),
        serving=serving,
        runtime_files=files,
    )
    if sample is not None:
        smoke_test(cap, sample)
    data = reference if reference is not None else sample
    if data is not None:
        from .reference import build_reference

        cap.reference = build_reference(model, data, schema, label, importance)
    return cap


def _check_fitted(model: Any, label: str) -> None:
    if "sklearn" not in sys.modules:
        return
    from sklearn.base import BaseEstimator
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not isinstance(model, BaseEstimator):
        return
    try:
        check_is_fitted(model)
    except NotFittedError:
        raise InvalidModelError(
            f"{label} ({type(model).__name__}) is not fitted yet: call {label}.fit(X, y) "
            "before deploying it."
        ) from None


def _kind(dtype: Any) -> str:
    kind = getattr(dtype, "kind", "O")
    return {"f": "float", "i": "integer", "u": "integer", "b": "bool", "M": "datetime"}.get(
        kind, "string"
    )


def infer_schema(model: Any, sample: Any, *, allow_nan: bool, label: str) -> InputSchema:
    """Schema from ``sample``, else ``feature_names_in_``, else ``n_features_in_``."""
    if sample is not None:
        schema = _schema_from_sample(sample, allow_nan)
        width = getattr(model, "n_features_in_", None)
        if width is not None and width != len(schema.columns):
            raise InvalidModelError(
                f"The sample has {len(schema.columns)} columns but {label} was fitted on "
                f"{width}; pass the data the model was trained on."
            )
        return schema
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        cols = [Column(str(n), "float", "float64", allow_nan) for n in names]
        return InputSchema(cols, frame=True, source="feature_names_in_")
    width = getattr(model, "n_features_in_", None)
    if width is not None:
        cols = [Column(f"x{i}", "float", "float64", allow_nan) for i in range(int(width))]
        return InputSchema(cols, frame=False, source="n_features_in_")
    raise InvalidModelError(
        f"Cannot infer the input schema of {label}: pass sample=<training data> "
        "(%deploy ... --sample X_train)."
    )


def _schema_from_sample(sample: Any, allow_nan: bool) -> InputSchema:
    if type(sample).__name__ == "DataFrame" and hasattr(sample, "dtypes"):
        cols = [
            Column(
                str(name),
                _kind(dtype),
                str(dtype),
                allow_nan or bool(sample[name].isna().any()),
            )
            for name, dtype in sample.dtypes.items()
        ]
        return InputSchema(cols, frame=True)
    import numpy as np

    try:
        arr = np.asarray(sample)
    except (ValueError, TypeError) as exc:
        raise InvalidModelError(f"The sample cannot be read as a table: {exc}") from None
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise InvalidModelError(f"The sample must be 2-D (rows x features), got shape {arr.shape}.")
    kind = _kind(arr.dtype)
    has_nan = np.isnan(arr).any(axis=0) if kind == "float" else np.zeros(arr.shape[1], bool)
    cols = [
        Column(f"x{i}", kind, str(arr.dtype), allow_nan or bool(has_nan[i]))
        for i in range(arr.shape[1])
    ]
    return InputSchema(cols, frame=False)


def pickle_with_modules(model: Any, label: str) -> tuple[bytes, set[str]]:
    """Pickle ``model`` by value where needed and return the modules its objects come from."""
    import cloudpickle

    modules: set[str] = set()

    class _Recorder(cloudpickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            mod = getattr(obj, "__module__", None) or type(obj).__module__
            if isinstance(mod, str):
                modules.add(mod.split(".")[0])
            return super().reducer_override(obj)

    buf = io.BytesIO()
    try:
        _Recorder(buf, protocol=5).dump(model)
    except Exception as exc:  # any pickling failure means the model cannot travel
        raise InvalidModelError(f"{label} cannot be serialised: {exc}") from None
    return buf.getvalue(), modules


def smoke_test(cap: ModelCapture, sample: Any) -> None:
    """Run the first sample rows through the Bento runtime; it must agree with predict."""
    import numpy as np

    if type(sample).__name__ == "DataFrame":
        head = sample.head(SMOKE_ROWS)
        records = json.loads(head.to_json(orient="records", date_format="iso"))
        direct = cap.model.predict(head)
    else:
        head = np.asarray(sample)[:SMOKE_ROWS]
        records = json.loads(json.dumps(head.tolist()))
        direct = cap.model.predict(head)
    runtime = ModelRuntime(cap.model, cap.schema)
    try:
        served = runtime.call("predict", records)["predictions"]
    except InputError as exc:
        raise InvalidModelError(
            f"The model fails on its own sample once sent as JSON: {exc}"
        ) from None
    if np.asarray(served).tolist() != np.asarray(direct).tolist():
        raise InvalidModelError(
            "The model predicts differently on JSON-encoded sample rows than on the sample "
            "itself; check the sample's dtypes."
        )
