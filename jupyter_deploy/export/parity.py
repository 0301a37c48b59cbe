"""Does the graph answer like the model? Agreement, differences, size and speed.

The check runs the Bento's own model and the graph (in onnxruntime) on the same rows.
A classifier agrees on a row when the labels are equal; a regressor when the values are
equal within 1e-4 relative (float32 graphs of tree regressors differ by ~1e-5 relative).
Latency is the median of repeated calls, one row and 1,000 rows, for both: figures for
the report, never a pass/fail criterion (they depend on the machine's load).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .convert import Converted, GraphInput
from .source import ExportSource

MIN_AGREEMENT = 0.999  # of rows whose label (or value) is the same
MAX_PROBABILITY_DIFFERENCE = 1e-4
VALUE_RTOL = 1e-4
LATENCY_ROWS = (1, 1_000)


@dataclass(frozen=True)
class Latency:
    """Median milliseconds per call of onnxruntime and of the model."""

    rows: int
    onnx_ms: float
    model_ms: float


@dataclass(frozen=True)
class ParityCheck:
    """One graph checked against the model on the parity rows."""

    label_agreement: float  # fraction of rows that agree (label or value)
    ties: int  # rows counted as agreeing although the labels differ: the model's top
    # classes tie (within the probability tolerance), so either label is the model's answer
    max_difference: float | None  # largest |probability| (or value) difference
    file_bytes: int
    latency: list[Latency]

    def failure(self, quantized: bool) -> str | None:
        """Why this check fails the export, or None. Quantisation may move probabilities."""
        if self.label_agreement < MIN_AGREEMENT:
            return (
                f"the graph agrees with the model on only {self.label_agreement:.2%} of rows "
                f"(needs {MIN_AGREEMENT:.1%})"
            )
        if (
            not quantized
            and self.max_difference is not None
            and self.max_difference > MAX_PROBABILITY_DIFFERENCE
        ):
            return (
                f"probabilities differ by up to {self.max_difference:.2g} "
                f"(allowed {MAX_PROBABILITY_DIFFERENCE:g})"
            )
        return None


@dataclass(frozen=True)
class ParityReport:
    """What an ONNX export wrote and how closely it matches the deployed model.

    ``graph`` checks the full-precision graph; ``quantized`` the quantised one that was
    written instead (None without ``quantize=True``). Also written as ``<stem>.parity.json``.
    """

    path: str
    bento_tag: str
    model_class: str
    task: str  # "classification" or "regression"
    difference_of: str  # "probability", "value" or "label only" (no predict_proba)
    rows_checked: int
    rows_source: str  # "sample" or "reference profile"
    precision: str  # "double" or "float"
    opset: dict[str, int]
    inputs: dict[str, str]  # column -> graph input
    graph: ParityCheck
    quantized: ParityCheck | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def feeds(inputs: list[GraphInput], frame: Any) -> dict[str, np.ndarray]:
    """The graph's inputs for the rows of ``frame``: one ``[N, 1]`` array per column."""
    out = {}
    for item in inputs:
        column = frame[item.column]
        if item.dtype == "str":
            out[item.input] = column.astype(str).to_numpy(dtype=object).reshape(-1, 1)
        else:
            out[item.input] = column.to_numpy(dtype=item.dtype).reshape(-1, 1)
    return out


def session(graph: Any) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # the quantiser's graphs warn about shape inference
    return ort.InferenceSession(graph.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])  # fmt: skip


def check(source: ExportSource, conv: Converted, graph: Any, task: str) -> ParityCheck:
    """Run ``graph`` (``conv``'s, or its quantised form) and the model on the parity rows."""
    sess = session(graph)
    rows = source.rows
    outputs = sess.run(None, feeds(conv.inputs, rows))
    expected = np.asarray(source.model.predict(source.model_input(rows)))
    got = np.asarray(outputs[0]).reshape(expected.shape)
    ties = 0
    if task == "classification":
        agree = got.astype(str) == expected.astype(str)  # int64, str and object labels alike
        difference = None
        if len(outputs) > 1 and callable(getattr(source.model, "predict_proba", None)):
            proba = np.asarray(source.model.predict_proba(source.model_input(rows)))
            difference = float(np.abs(np.asarray(outputs[1]) - proba).max())
            tied = ~agree & _tied(source.model, proba, got)
            ties, agree = int(tied.sum()), agree | tied
    else:
        got, expected = got.astype(float), expected.astype(float)
        agree = np.isclose(got, expected, rtol=VALUE_RTOL, atol=VALUE_RTOL)
        difference = float(np.abs(got - expected).max())
    agreement = float(np.mean(agree.reshape(len(rows), -1).all(axis=1)))
    return ParityCheck(
        label_agreement=agreement,
        ties=ties,
        max_difference=difference,
        file_bytes=graph.ByteSize(),
        latency=[_latency(source, conv, sess, n) for n in LATENCY_ROWS],
    )


def _tied(model: Any, proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rows where the graph's label has the model's top probability, within tolerance.

    A forest of 20 trees splits 10/10 on some rows; scikit-learn takes the first class,
    float32 sums in the graph may pick the other: not a disagreement of the models.
    """
    classes = [str(c) for c in getattr(model, "classes_", [])]
    index = np.array([classes.index(g) if g in classes else -1 for g in labels.astype(str)])
    if len(classes) != proba.shape[1] or (index < 0).any():
        return np.zeros(len(labels), dtype=bool)
    mine = proba[np.arange(len(labels)), index]
    return np.asarray(mine >= proba.max(axis=1) - MAX_PROBABILITY_DIFFERENCE)


def _latency(source: ExportSource, conv: Converted, sess: Any, n: int) -> Latency:
    rows = source.rows
    picked = rows.iloc[np.arange(n) % len(rows)].reset_index(drop=True)
    feed = feeds(conv.inputs, picked)
    x = source.model_input(picked)
    repeats = 30 if n == 1 else 5
    onnx_ms = _median_ms(lambda: sess.run(None, feed), repeats)
    model_ms = _median_ms(lambda: source.model.predict(x), repeats)
    return Latency(n, round(onnx_ms, 4), round(model_ms, 4))


def _median_ms(call: Any, repeats: int) -> float:
    call()  # warm-up: first calls allocate
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000
