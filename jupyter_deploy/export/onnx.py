"""ONNX export of a Bento's model: convert, check parity, write the files or nothing.

The graph is only written when it answers like the deployed model on the parity rows
(:mod:`.parity`); a step without a converter is refused before any conversion, naming the
step. ``double`` inputs are tried first and ``float`` next (see :mod:`.convert`); the
first graph that passes is kept.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from .._bento.models import GRAPH_FILE
from ..build.capture import ModelCapture
from ..build.reference import task_of
from ..errors import ExportError
from . import files
from .convert import PRECISIONS, Converted, convert, quantize_graph, refuse_unconvertible
from .parity import ParityCheck, ParityReport, check
from .source import ExportSource, load, parity_rows


def export_onnx(
    bento_tag: str, path: str | Path, *, quantize: bool = False, sample: Any = None
) -> ParityReport:
    """Write ``path`` (an ONNX graph) and its companion files; return the parity report.

    Raises :class:`ExportError` (and writes nothing) when a step cannot be converted, when
    the graph disagrees with the model, or when quantisation would not change the graph.
    """
    target = Path(path)
    if target.suffix != ".onnx":
        raise ExportError(f"{target.name}: an ONNX export's file name must end in .onnx.")
    _require_converters()
    source = load(bento_tag, sample)
    cls = type(source.model)
    model_class = f"{cls.__module__}.{cls.__qualname__}"
    refuse_unconvertible(source.model)
    task = task_of(source.model)
    order = ("float",) if quantize else PRECISIONS
    conv, graph_check = _first_passing(source, task, order)
    graph, quantized = conv.graph, None
    if quantize:
        graph = quantize_graph(conv.graph, cls.__name__)
        quantized = check(source, conv, graph, task)
        why = quantized.failure(quantized=True)
        if why is not None:
            raise ExportError(f"After quantisation {why}; export without quantize=True.")
    proba = task == "classification" and graph_check.max_difference is not None
    report = ParityReport(
        path=str(target.resolve()),
        bento_tag=bento_tag,
        model_class=model_class,
        task=task,
        difference_of="probability" if proba else "value" if task == "regression" else "label",
        rows_checked=len(source.rows),
        rows_source=source.rows_source,
        precision=conv.precision,
        opset=conv.opset,
        inputs={i.column: i.input for i in conv.inputs},
        graph=graph_check,
        quantized=quantized,
    )
    classes = getattr(source.model, "classes_", None)
    doc = files.inputs_document(conv, target.name, source.rows, classes)
    files.write(target, graph.SerializeToString(), doc, report)
    return report


def for_serving(cap: ModelCapture, sample: Any) -> None:
    """Give ``cap`` the ONNX graph its replicas will run (``runtime="onnx"``).

    Converted and checked exactly as an export is, on the caller's ``sample`` (or rows
    drawn from the reference profile); raises :class:`ExportError` with one line when a
    step cannot be converted or the graph does not answer like the model, so nothing is
    deployed. The graph goes into the model folder beside the pickle (``serving.json``
    names it), which stays the source for exports and the ``python`` runtime.
    """
    _require_converters()
    if sample is None and cap.reference is None:
        raise ExportError(
            'runtime="onnx" checks the graph against the model before serving it: pass '
            "sample=<rows like the training data>."
        )
    rows, where = parity_rows(cap.schema, sample, cap.reference)
    source = ExportSource("", cap.model, cap.schema, rows, where)
    refuse_unconvertible(cap.model)
    task = task_of(cap.model)
    conv, result = _first_passing(source, task, PRECISIONS)
    classes = getattr(cap.model, "classes_", None)
    one_row = source.model_input(rows.head(1))
    config = {
        "graph": GRAPH_FILE,
        "inputs": [asdict(i) for i in conv.inputs],
        "outputs": conv.outputs,
        "classes": None if classes is None else [_plain(c) for c in classes],
        "proba": "predict_proba" in cap.methods and len(conv.outputs) > 1,
        "flat": getattr(cap.model.predict(one_row), "ndim", 1) == 1,
        "precision": conv.precision,
        "opset": conv.opset,
    }
    parity = {"rows_checked": len(rows), "rows_source": where, "precision": conv.precision,
              "label_agreement": result.label_agreement, "ties": result.ties,
              "max_difference": result.max_difference,
              "latency": [asdict(x) for x in result.latency]}  # fmt: skip
    cap.serving.update(runtime="onnx", onnx=config)
    # skl2onnx names each graph with a random uuid: a fixed name keeps an unchanged model's
    # graph byte-identical, so its Bento is reused (build/packaging.py's fingerprint).
    conv.graph.graph.name = "jupyter_deploy"
    cap.runtime_files[GRAPH_FILE] = conv.graph.SerializeToString()
    cap.parity = parity
    cap.modules.add("onnxruntime")  # pinned in the Bento like the model's own packages


def _plain(value: Any) -> Any:
    """A class label as JSON (numpy scalars become Python values)."""
    return value.item() if hasattr(value, "item") else value


def _require_converters() -> None:
    try:
        import onnxruntime  # noqa: F401
        import skl2onnx  # noqa: F401
    except ImportError:
        raise ExportError(
            "ONNX export needs skl2onnx and onnxruntime: pip install 'jupyter_deploy[onnx]'."
        ) from None


def _first_passing(
    source: ExportSource, task: str, order: tuple[str, ...]
) -> tuple[Converted, ParityCheck]:
    """The first conversion, by precision, whose graph passes the parity check."""
    failures = []
    for precision in order:
        try:
            conv = convert(source.model, source.schema, precision)
            result = check(source, conv, conv.graph, task)
        except ExportError as exc:
            failures.append(str(exc))
            continue
        except Exception as exc:  # onnxruntime refusing a graph skl2onnx made
            failures.append(f"onnxruntime cannot run the {precision} graph: {_line(exc)}")
            continue
        why = result.failure(quantized=False)
        if why is None:
            return conv, result
        failures.append(f"{precision}: {why}")
    raise ExportError(failures[-1] if len(failures) == 1 else "; ".join(failures))


def _line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
