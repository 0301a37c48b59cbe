"""ONNX export of a Bento's model: convert, check parity, write the files or nothing.

The graph is only written when it answers like the deployed model on the parity rows
(:mod:`.parity`); a step without a converter is refused before any conversion, naming the
step. ``double`` inputs are tried first and ``float`` next (see :mod:`.convert`); the
first graph that passes is kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..build.reference import task_of
from ..errors import ExportError
from . import files
from .convert import PRECISIONS, Converted, convert, quantize_graph, refuse_unconvertible
from .parity import ParityCheck, ParityReport, check
from .source import ExportSource, load


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
    try:
        import onnxruntime  # noqa: F401
        import skl2onnx  # noqa: F401
    except ImportError:
        raise ExportError(
            "ONNX export needs skl2onnx and onnxruntime: pip install 'jupyter_deploy[onnx]'."
        ) from None
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
