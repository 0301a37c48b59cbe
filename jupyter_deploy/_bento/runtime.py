"""Model runtime shipped inside every Bento as ``jd_runtime.py``.

It turns a JSON payload into the model's input, validates it against the input schema
captured at deploy time, and turns predictions into JSON. Both servers of a Bento use it,
so they answer identically: the Bento's own ``service.py`` (``bentoml serve``) and the
Ray Serve replica of jupyter_deploy. It must stay standalone: it imports only the standard
library, numpy and pandas, never jupyter_deploy; the model itself is loaded by
``jd_models.py`` beside it (the pickle, or the ONNX graph for ``runtime="onnx"``).

NaN policy: a column accepts ``null``/``NaN`` only if the training sample had missing
values in it (or the deployment set ``allow_nan``); infinities are always rejected, as
scikit-learn would fail on them with a server error.
"""

from __future__ import annotations

import importlib.util
import json
import math
import operator
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:  # orjson parses and dumps several times faster; the runtime works without it.
    import orjson
except ImportError:  # pragma: no cover - depends on the serving environment
    orjson = None


def loads(body: bytes) -> Any:
    if orjson is not None:
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:  # NaN/Infinity (Python's json writes them): below,
            pass  # leniently, so the NaN policy can name the column
    return json.loads(body)


def dumps(obj: Any) -> bytes:
    if orjson is not None:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)
    return json.dumps(obj).encode()


SCHEMA_FILE = "input_schema.json"
NUMBER_KINDS = ("float", "integer", "bool")
MAX_NAMED_ERRORS = 5
# Numbers past 1e308 are refused (as decimals: the OpenAPI document's bound is written so).
NUMBER_LIMIT = 10**308
_NUMBER_TYPES = frozenset({int, float})


def _too_big(value: int | float) -> bool:
    return abs(value) > (NUMBER_LIMIT if isinstance(value, int) else 1e308)


class InputError(ValueError):
    """The client sent something the model cannot take (HTTP 400)."""

    status = 400


class PayloadTooLarge(InputError):
    status = 413  # the batch has more rows than the deployment accepts


class ModelRejected(InputError):
    status = 422  # the input passed the schema but the model refused it


@dataclass
class Column:
    """One input feature: its name, kind, numpy dtype and whether it may be missing."""

    name: str
    kind: str  # "float" | "integer" | "bool" | "string" | "datetime"
    dtype: str
    nullable: bool = False


@dataclass
class InputSchema:
    """The model's input: ordered columns, and whether the model takes a DataFrame."""

    columns: list[Column]
    frame: bool
    source: str = "sample"  # where it was inferred from, for the summary
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSchema:
        cols = [Column(**c) for c in data["columns"]]
        return cls(cols, data["frame"], data.get("source", "sample"), data.get("extra", {}))


def _check_value(col: Column, value: Any, row: int) -> Any:
    """Return ``value`` fit for ``col`` or raise :class:`InputError` naming the problem."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if missing:
        if col.nullable:
            return None if col.kind == "string" else float("nan")
        raise InputError(
            f"instance {row}: column '{col.name}' is null, and this model does not accept "
            "missing values there"
        )
    if col.kind in NUMBER_KINDS:
        if not isinstance(value, int | float) or (isinstance(value, bool) and col.kind != "bool"):
            raise InputError(f"instance {row}: column '{col.name}' expects a number, got {value!r}")
        if (isinstance(value, float) and math.isinf(value)) or _too_big(value):
            raise InputError(f"instance {row}: column '{col.name}' is not finite or past 1e308")
        if col.kind == "integer" and not -(2**63) <= value < 2**63:
            raise InputError(f"instance {row}: column '{col.name}' is out of the int64 range")
        if col.kind == "integer" and isinstance(value, float) and not value.is_integer():
            raise InputError(
                f"instance {row}: column '{col.name}' expects an integer, got {value!r}"
            )
        return value
    if col.kind == "string":
        if not isinstance(value, str | int | float | bool) or (
            not isinstance(value, str) and _too_big(value)
        ):
            raise InputError(f"instance {row}: column '{col.name}' expects a string, got {value!r}")
        return value if isinstance(value, str) else str(value)  # one type per column
    if not isinstance(value, str | int | float):  # datetime: ISO string or epoch
        raise InputError(f"instance {row}: column '{col.name}' expects a date, got {value!r}")
    return value


def _names(items: list[str]) -> str:
    shown = ", ".join(repr(n) for n in items[:MAX_NAMED_ERRORS])
    return shown + (f" (+{len(items) - MAX_NAMED_ERRORS} more)" if len(items) > 5 else "")


class ModelRuntime:
    """A loaded model plus its schema: payload in, JSON-able predictions out."""

    def __init__(self, model: Any, schema: InputSchema, max_batch_rows: int = 10_000) -> None:
        self.model = model
        self.schema = schema
        self.max_batch_rows = max_batch_rows
        self._index = {c.name: i for i, c in enumerate(schema.columns)}
        self._all_float = all(c.kind == "float" and not c.nullable for c in schema.columns)
        # For the column-wise fast path (:meth:`_matrix`): one dtype, the key set, a getter.
        dtypes = {c.dtype for c in schema.columns}
        self._dtype = dtypes.pop() if self._all_float and len(dtypes) == 1 else None
        self._keys = frozenset(self._index)
        names = tuple(self._index)
        self._get = operator.itemgetter(*names) if len(names) > 1 else lambda r: (r[names[0]],)
        self._pd_columns: Any = None  # the frame's column index, made once pandas is loaded
        self._arrays = False  # the model takes the float matrix itself (serve_arrays)
        self.methods = [m for m in ("predict", "predict_proba") if hasattr(model, m)]

    @classmethod
    def from_dir(
        cls, path: str | Path, max_batch_rows: int = 10_000, runtime: str | None = None
    ) -> ModelRuntime:
        """Load the model and schema the Bento build wrote into ``path``, run as ``runtime``
        says (``python``: the pickle, ``onnx``: the graph; see ``jd_models.py``)."""
        path = Path(path)
        schema = InputSchema.from_dict(json.loads((path / SCHEMA_FILE).read_text()))
        return cls(models().load(path, schema.names, runtime), schema, max_batch_rows)

    def serve_arrays(self) -> None:
        """In a serving process: give the model the validated float matrix, not a frame of
        it, if it answers both alike (``jd_models.answers_arrays`` says why and when)."""
        self._arrays = models().answers_arrays(self.model, self.schema.names, self._dtype)

    # -- payload -> model input -------------------------------------------------------
    def instances_from_body(self, body: bytes) -> list[Any]:
        """Parse a request body ``{"instances": [...]}``; raise InputError if malformed."""
        try:
            payload = loads(body)
        except ValueError as exc:
            raise InputError(f"malformed JSON body: {exc}") from None
        if not isinstance(payload, dict) or "instances" not in payload:
            raise InputError('the body must be a JSON object {"instances": [...]}')
        return payload["instances"]

    def to_model_input(self, instances: Any) -> Any:
        """Validate ``instances`` (records or rows) and build the model's input."""
        if not isinstance(instances, list):
            raise InputError('"instances" must be a list of records or rows')
        if not instances:
            raise InputError('"instances" is empty: send at least one record or row')
        if len(instances) > self.max_batch_rows:
            raise PayloadTooLarge(
                f"batch of {len(instances)} rows exceeds this deployment's limit of "
                f"{self.max_batch_rows} rows per request; split it"
            )
        fast = self._matrix(instances)
        if fast is not None:
            return self._frame(fast)
        rows = [self._row(inst, i) for i, inst in enumerate(instances)]
        try:
            return self._frame(rows)
        except InputError:
            raise
        except (OverflowError, ValueError, TypeError) as exc:  # e.g. an integer over int64
            raise InputError(f"the instances do not fit the columns' types: {exc}") from None

    def _matrix(self, instances: list[Any]) -> Any:
        """The instances as one 2-D array if :meth:`_row` would accept them all (the schema's
        keys or width; ints or floats within +-1e308), checked column-wise; else None."""
        if self._dtype is None:
            return None
        keys, get, width = self._keys, self._get, len(self._keys)
        rows: list[Any] = []
        for inst in instances:
            if type(inst) is dict and inst.keys() == keys:
                rows.append(get(inst))
            elif type(inst) is list and len(inst) == width:
                rows.append(inst)
            else:
                return None
        if not {type(v) for row in rows for v in row} <= _NUMBER_TYPES:
            return None  # bool, str, None...: the row-by-row checks decide
        try:
            matrix = np.asarray(rows, dtype=self._dtype)
        except (OverflowError, ValueError, TypeError):
            return None
        # Finite and within the numbers the document allows (NaN fails the comparison).
        return matrix if (np.abs(matrix) <= 1e308).all() else None

    def matrix_input(self, x: Any) -> Any:
        """Batch jobs' fast path: the model input for a 2-D float array whose rows
        :meth:`to_model_input` would accept (checked at once), or None for the row checks."""
        if not self._all_float or getattr(x, "ndim", 0) != 2 or x.dtype.kind != "f":
            return None
        if x.shape[1] != len(self.schema.columns) or not 0 < len(x) <= self.max_batch_rows:
            return None
        return self._frame(x) if (np.abs(x) <= 1e308).all() else None

    def _row(self, inst: Any, i: int) -> list[Any]:
        cols = self.schema.columns
        if isinstance(inst, dict):
            if len(inst) != len(cols) or any(k not in self._index for k in inst):
                missing = [c.name for c in cols if c.name not in inst]
                extra = [str(k) for k in inst if k not in self._index]
                parts = [f"missing column(s) {_names(missing)}"] if missing else []
                parts += [f"unknown column(s) {_names(extra)}"] if extra else []
                raise InputError(f"instance {i}: {'; '.join(parts)} "
                                 f"(expected {_names(self.schema.names)})")  # fmt: skip
            values = [inst[c.name] for c in cols]
        elif isinstance(inst, list):
            if len(inst) != len(cols):
                raise InputError(
                    f"instance {i} has {len(inst)} values, expected {len(cols)} "
                    f"({_names(self.schema.names)})"
                )
            values = inst
        else:
            raise InputError(
                f"instance {i} must be a record (object) or a row (list), got {inst!r}"
            )
        if self._all_float:  # fast path for the common all-numeric model
            for c, v in zip(cols, values, strict=True):
                # finite and within the document's bound (NaN fails the comparison)
                if not (type(v) in _NUMBER_TYPES and -1e308 <= v <= 1e308):
                    _check_value(c, v, i)
            return values
        return [_check_value(c, v, i) for c, v in zip(cols, values, strict=True)]

    def _frame(self, rows: Any) -> Any:
        if not self.schema.frame or self._arrays:  # (the values the one-block frame holds)
            dtype = self.schema.columns[0].dtype if self._all_float else None
            return np.asarray(rows, dtype=dtype)
        import pandas as pd

        if self._dtype is not None and isinstance(rows, np.ndarray):
            # One block of the schema's dtype: what the per-column astype below makes of
            # these values, at a tenth of the cost, and cheaper for the model to read.
            if self._pd_columns is None:
                self._pd_columns = pd.Index(self.schema.names)
            return pd.DataFrame(rows.astype(self._dtype, copy=False), columns=self._pd_columns,
                                copy=False)  # fmt: skip

        df = pd.DataFrame(rows, columns=self.schema.names)
        for c in self.schema.columns:
            if c.kind == "datetime":
                try:
                    df[c.name] = pd.to_datetime(df[c.name])
                except (ValueError, TypeError) as exc:
                    raise InputError(f"column '{c.name}': {exc}") from None
            elif c.kind != "string" and not c.nullable:
                df[c.name] = df[c.name].astype(c.dtype)
            elif c.dtype.startswith("category"):
                df[c.name] = df[c.name].astype("category")
        return df

    # -- model calls -----------------------------------------------------------------
    def check_method(self, method: str) -> None:
        if method not in self.methods:
            raise InputError(f"this model has no {method}; available: {self.methods}")

    def run(self, method: str, x: Any) -> Any:
        """Call the model on a validated input (one request's, or a batch of several)."""
        try:
            return np.asarray(getattr(self.model, method)(x))
        except (ValueError, TypeError, KeyError) as exc:
            # The input passed the schema but the model refused it (an unseen category
            # with handle_unknown='error', say): the client's data, not a server fault.
            raise ModelRejected(f"the model rejected the input: {exc}") from None

    def answer(self, method: str, out: Any) -> dict[str, Any]:
        """The JSON answer for the model's output ``out``."""
        answer: dict[str, Any] = {"predictions": out.tolist()}
        if method == "predict_proba" and hasattr(self.model, "classes_"):
            answer["classes"] = np.asarray(self.model.classes_).tolist()
        return answer

    def call(self, method: str, instances: Any) -> dict[str, Any]:
        """Validate ``instances``, run ``method`` and return the JSON answer."""
        self.check_method(method)
        return self.answer(method, self.run(method, self.to_model_input(instances)))

    def concat(self, inputs: list[Any]) -> Any:
        """One model input made of several validated ones (for batching requests)."""
        if not self.schema.frame or self._arrays:
            return np.concatenate(inputs)
        import pandas as pd

        return pd.concat(inputs, ignore_index=True)


def models() -> Any:
    """The model loaders beside this file (``jd_models.py``; ``models.py`` in the package),
    imported by path (replicas import this module by path, under a name per version): one
    copy per runtime module, so two versions in one replica each keep theirs."""
    here = Path(__file__).parent
    file = here / "jd_models.py" if (here / "jd_models.py").exists() else here / "models.py"
    name = f"{__package__}.models" if __package__ else f"{__name__}_models"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
