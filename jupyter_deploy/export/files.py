"""The files of an ONNX export, written all together or not at all.

``churn.onnx`` comes with ``churn.inputs.json`` (column -> graph input, dtypes, outputs,
opset, example rows), ``churn.parity.json`` (the :class:`ParityReport`),
``churn.README.md`` and ``churn_predict.py`` (onnxruntime and numpy only). Names start
with the graph's stem, so two exports share a folder without overwriting each other.

Everything is written into a hidden folder beside the target first and moved into place
at the end: a failure leaves no file behind, and a reader never sees half an export.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .convert import Converted
from .parity import ParityReport

EXAMPLE_ROWS = 3
_STANDALONE = Path(__file__).with_name("standalone.py")


def names(target: Path) -> dict[str, str]:
    """The file names of an export whose graph is ``target``."""
    stem = target.stem
    return {
        "graph": target.name,
        "inputs": f"{stem}.inputs.json",
        "parity": f"{stem}.parity.json",
        "readme": f"{stem}.README.md",
        "script": f"{stem}_predict.py",
    }


def inputs_document(conv: Converted, graph_name: str, rows: Any, classes: Any) -> dict[str, Any]:
    """What a consumer needs to feed the graph: the map, dtypes, outputs and example rows."""
    example = json.loads(rows.head(EXAMPLE_ROWS).to_json(orient="records"))
    return {
        "graph": graph_name,
        "inputs": [{"column": i.column, "input": i.input, "dtype": i.dtype} for i in conv.inputs],
        "outputs": conv.outputs,
        "classes": None if classes is None else [str(c) for c in classes],
        "precision": conv.precision,
        "opset": conv.opset,
        "example": example,
    }


def readme(report: ParityReport, files: dict[str, str]) -> str:
    """A short README: what the graph is, how to call it, how closely it matches."""
    check = report.quantized or report.graph
    diff = "-" if check.max_difference is None else f"{check.max_difference:.2g}"
    lines = [
        f"# {files['graph']}",
        "",
        f"ONNX export of `{report.model_class}` from Bento `{report.bento_tag}` "
        f"({report.precision} inputs, opset {report.opset}"
        f"{', int8 dynamic quantisation' if report.quantized else ''}).",
        "",
        "## Predict",
        "",
        "```",
        "pip install onnxruntime",
        f"python {files['script']}              # the example rows in {files['inputs']}",
        f"python {files['script']} rows.json    # a JSON list of records",
        "```",
        "",
        "One `[N, 1]` input per column (ONNX names are C identifiers):",
        "",
        "| column | input |",
        "| --- | --- |",
        *(f"| {col} | {name} |" for col, name in report.inputs.items()),
        "",
        "## Parity with the deployed model",
        "",
        f"On {report.rows_checked} rows ({report.rows_source}): "
        f"{check.label_agreement:.2%} of rows agree ({check.ties} of them on a tie between "
        f"the model's top classes); largest {report.difference_of} "
        f"difference {diff}. Details in `{files['parity']}`.",
        "",
    ]
    return "\n".join(lines)


def write(target: Path, graph_bytes: bytes, inputs: dict[str, Any], report: ParityReport) -> None:
    """Write every file of the export, or none of them."""
    files = names(target)
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.stem}-", dir=folder))
    try:
        (staging / files["graph"]).write_bytes(graph_bytes)
        (staging / files["inputs"]).write_text(json.dumps(inputs, indent=2))
        (staging / files["parity"]).write_text(json.dumps(report.to_dict(), indent=2))
        (staging / files["readme"]).write_text(readme(report, files))
        script = _STANDALONE.read_text().replace(
            'INPUTS_FILE = "model.inputs.json"', f"INPUTS_FILE = {files['inputs']!r}"
        )
        (staging / files["script"]).write_text(script)
        for name in files.values():
            (staging / name).replace(folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
