"""What an export starts from: the Bento's model, its input schema, and rows to check on.

The model and schema are read from the Bento in the local BentoML store exactly as a
replica reads them (:meth:`ModelRuntime.from_dir`), so the graph is made from the
deployed bytes, not from whatever the notebook holds now.

Parity rows. The Bento stores no training rows (only the reference profile drift uses;
raw data in every Bento would be a privacy leak). Rows the caller passes (``sample=``)
win; otherwise rows are drawn, seeded, from the reference profile: categories by their
reference frequency, numbers uniformly inside the reference's quantile bins, and for a
feature with few distinct values those exact values (recovered from the bin midpoints),
so one-hot and threshold steps see the values they were fitted on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._bento.runtime import InputSchema, ModelRuntime
from ..build.reference import REFERENCE_FILE
from ..errors import ExportError
from ..monitoring.profile import DISCRETE_MAX, FeatureProfile, ReferenceProfile

PARITY_ROWS = 1_000  # rows drawn from the profile: 99.9 % agreement is then one row


@dataclass
class ExportSource:
    """A Bento's model and schema, and the rows the parity check runs on."""

    bento_tag: str
    model: Any
    schema: InputSchema
    rows: Any  # DataFrame with the schema's columns, in the schema's dtypes
    rows_source: str  # "sample" or "reference profile"

    def model_input(self, frame: Any) -> Any:
        """``frame`` as the model takes it: a DataFrame, or an array for array schemas."""
        return frame if self.schema.frame else frame.to_numpy()


def load(bento_tag: str, sample: Any = None) -> ExportSource:
    """Load the model of ``bento_tag`` and the rows to check it on."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        model_tag = bentoml.bentos.get(bento_tag).info.models[0].tag
        model_dir = Path(bentoml.models.get(model_tag).path)
    except NotFound:
        raise ExportError(
            f"Bento {bento_tag} is not in the local BentoML store; export from the machine "
            "that built it."
        ) from None
    # The model itself, even when the deployment serves a graph made from it.
    runtime = ModelRuntime.from_dir(model_dir, runtime="python")
    path = model_dir / REFERENCE_FILE
    reference = json.loads(path.read_text()) if path.exists() else None
    rows, where = parity_rows(runtime.schema, sample, reference)
    return ExportSource(bento_tag, runtime.model, runtime.schema, rows, where)


def parity_rows(schema: InputSchema, sample: Any, reference: dict[str, Any] | None) -> Any:
    """``(rows, where they come from)``: the caller's sample, else rows drawn from the profile."""
    if sample is not None:
        return _sample_rows(sample, schema), "sample"
    return _profile_rows(reference or {}, schema), "reference profile"


def _sample_rows(sample: Any, schema: InputSchema) -> Any:
    import pandas as pd

    if isinstance(sample, pd.DataFrame):
        missing = [n for n in schema.names if n not in sample.columns]
        if missing:
            raise ExportError(f"sample= lacks column(s) {missing}; pass the model's input columns.")
        return sample[schema.names].reset_index(drop=True)
    arr = np.asarray(sample)
    if arr.ndim != 2 or arr.shape[1] != len(schema.names):
        raise ExportError(
            f"sample= must have {len(schema.names)} columns, got shape {arr.shape}; "
            "pass rows like the training data."
        )
    return _typed(pd.DataFrame(arr, columns=schema.names), schema)


def _profile_rows(reference: dict[str, Any], schema: InputSchema) -> Any:
    import pandas as pd

    if "inputs" not in reference:
        raise ExportError(
            "This Bento was built without a sample, so there are no rows to check the graph "
            "on; pass sample=<rows like the training data>."
        )
    profile = ReferenceProfile.from_dict(reference["inputs"])
    rng = np.random.default_rng(0)
    data = {name: _draw(profile.feature(name), rng) for name in schema.names}
    return _typed(pd.DataFrame(data), schema)


def _draw(feature: FeatureProfile, rng: np.random.Generator) -> np.ndarray:
    """``PARITY_ROWS`` values distributed like the reference, never missing."""
    counts = np.asarray(feature.reference[:-1], dtype=float)  # the last bucket is "missing"
    if feature.kind == "categorical":
        counts = counts[:-1]  # nor "other": no value stands for it
        weights = counts / counts.sum()
        picks = rng.choice(len(feature.categories), PARITY_ROWS, p=weights)
        return np.asarray(feature.categories, dtype=object)[picks]
    weights = counts / counts.sum()
    bucket = rng.choice(len(counts), PARITY_ROWS, p=weights)
    values = _discrete_values(feature)
    if values is not None:
        return values[bucket]
    assert feature.lo is not None and feature.hi is not None
    bounds = np.concatenate(([feature.lo], feature.edges, [feature.hi]))
    low, high = bounds[bucket], np.maximum(bounds[bucket + 1], bounds[bucket])
    return low + (high - low) * rng.random(PARITY_ROWS)


def _discrete_values(feature: FeatureProfile) -> np.ndarray | None:
    """The exact values of a few-valued feature (its bins are cut halfway between them)."""
    if feature.lo is None or feature.hi is None or len(feature.edges) + 1 > DISCRETE_MAX:
        return None
    values = [feature.lo]
    for cut in feature.edges:
        values.append(2 * cut - values[-1])
    if not np.isclose(values[-1], feature.hi) or np.any(np.diff(values) <= 0):
        return None  # quantile cuts, not midpoints
    values[-1] = feature.hi
    return np.asarray(values)


def _typed(frame: Any, schema: InputSchema) -> Any:
    """Columns in the schema's dtypes (what the runtime would give the model)."""
    for col in schema.columns:
        if col.kind == "integer":
            frame[col.name] = np.round(frame[col.name].astype(float)).astype(col.dtype)
        elif col.kind in ("float", "bool"):
            frame[col.name] = frame[col.name].astype(col.dtype)
        elif col.kind == "string":
            frame[col.name] = frame[col.name].astype(object)
    return frame
