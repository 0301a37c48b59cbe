"""scikit-learn model -> ONNX graph with one named input per column of the input schema.

Inputs. A pipeline that starts with a ColumnTransformer takes its columns as separate
graph inputs natively (strings as string tensors); any other model takes one 2-D tensor,
so a ``Concat`` node is put in front of it and each column gets its own ``[N, 1]`` input.
skl2onnx renames inputs to C-style identifiers ("petal length" -> "petal_length"), so the
column -> input map is read back from the graph and written beside it.

Precision (measured with skl2onnx 1.20, onnxruntime 1.32, scikit-learn 1.9). Inputs are
``double`` first: linear models and MLPs are then exact (2e-16 in probability; float32
moves them by ~1e-7 and can flip a label on the boundary). Trees need care: scikit-learn
casts a tree's input to float32 before comparing it with thresholds, and ORT refuses
double tree graphs (double output of TreeEnsemble*). So a tree step gets a float32
``CastTransformer`` in front, which changes nothing in scikit-learn and makes the graph
do the same: preprocessing in double, trees in float32. Without it a scaler + forest
pipeline converted in float differed by 0.1 in probability (float32 scaling moved rows
across thresholds). ``float`` is the fallback (:mod:`.onnx` keeps the first graph that
passes parity) and what quantisation uses (its kernels are float32).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .._bento.runtime import InputSchema
from ..errors import ExportError
from .boosters import convert_booster, without_feature_names

# Opsets every onnxruntime since 1.14 runs; what the graph really uses is recorded.
TARGET_OPSET = {"": 18, "ai.onnx.ml": 3}
PRECISIONS = ("double", "float")
_NUMPY = {"double": "float64", "float": "float32", "string": "str"}


@dataclass(frozen=True)
class GraphInput:
    """One column of the schema and the graph input it is fed to."""

    column: str
    input: str
    dtype: str  # numpy dtype the input takes: float64, float32 or str


@dataclass(frozen=True)
class Converted:
    """A converted graph and how to feed and read it."""

    graph: Any  # onnx.ModelProto
    inputs: list[GraphInput]
    outputs: list[str]
    precision: str

    @property
    def opset(self) -> dict[str, int]:
        return {o.domain or "ai.onnx": int(o.version) for o in self.graph.opset_import}


def steps(model: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every estimator inside ``model`` with a dotted name (pipelines, column transformers)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline

    if isinstance(model, Pipeline):
        children = [(n, s) for n, s in model.steps]
    elif isinstance(model, ColumnTransformer):
        children = [(n, s) for n, s, _ in model.transformers_]
    elif isinstance(model, FeatureUnion):
        children = list(model.transformer_list)
    else:
        return []
    found = []
    for name, step in children:
        if isinstance(step, str):  # "drop" / "passthrough"
            continue
        found.append((prefix + name, step))
        found.extend(steps(step, f"{prefix}{name}."))
    return found


def refuse_unconvertible(model: Any) -> None:
    """Raise :class:`ExportError` naming the first step skl2onnx has no converter for."""
    from skl2onnx import get_model_alias

    from .boosters import register

    if getattr(model, "native_booster", False):  # onnxmltools converts it directly
        return
    found = [("model", model), *steps(model)]
    register({type(step).__module__.split(".")[0] for _, step in found})
    for name, step in found:
        cls = type(step)
        try:
            get_model_alias(cls)  # raises when no converter is registered
            continue
        except RuntimeError:
            pass
        if cls.__module__ == "__main__":
            why = "it is a class defined in the notebook, which skl2onnx cannot translate"
        else:
            why = f"skl2onnx has no converter for {cls.__module__}.{cls.__qualname__}"
        where = "The model" if step is model else f"Step '{name}'"
        raise ExportError(f"{where} ({cls.__name__}) cannot be exported to ONNX: {why}.")


def _tree(step: Any) -> bool:
    tree_modules = ("sklearn.tree", "sklearn.ensemble", "xgboost", "lightgbm")
    return type(step).__module__.startswith(tree_modules)


def _cast_before_tree(model: Any) -> Any:
    """``model`` with a float32 cast in front of a final tree step (what scikit-learn does)."""
    import numpy as np
    from skl2onnx.sklapi import CastTransformer
    from sklearn.pipeline import Pipeline

    named = model.steps if isinstance(model, Pipeline) else [("model", model)]
    if not _tree(named[-1][1]):
        return model
    cast = CastTransformer(dtype=np.float32).fit(np.zeros((1, 1)))
    return Pipeline([*named[:-1], ("jd_float32", cast), named[-1]])


def _classifier(model: Any) -> Any:
    """The estimator whose ``zipmap`` option applies: the last step of a pipeline."""
    from sklearn.base import is_classifier
    from sklearn.pipeline import Pipeline

    last = model.steps[-1][1] if isinstance(model, Pipeline) else model
    return last if is_classifier(last) else None


def _starts_with_columns(model: Any) -> bool:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    first = model.steps[0][1] if isinstance(model, Pipeline) else model
    return isinstance(first, ColumnTransformer)


def _tensor_type(kind: str, precision: str) -> tuple[Any, str]:
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        StringTensorType,
    )

    if kind == "string":
        return StringTensorType([None, 1]), "string"
    # Integer and bool columns too: scikit-learn's numeric steps compute in float64.
    if precision == "double":
        return DoubleTensorType([None, 1]), "double"
    return FloatTensorType([None, 1]), "float"


def identifier(name: str, taken: set[str]) -> str:
    """A C-style identifier for a column name, unique among ``taken``."""
    base = re.sub(r"\W", "_", name, flags=re.ASCII) or "x"
    base = "_" + base if base[0].isdigit() else base
    out, n = base, 1
    while out in taken:
        out, n = f"{base}_{n}", n + 1
    taken.add(out)
    return out


def convert(model: Any, schema: InputSchema, precision: str) -> Converted:
    """Convert ``model`` at ``precision`` (``double`` or ``float``); raise ExportError."""
    from skl2onnx import convert_sklearn

    dated = [c.name for c in schema.columns if c.kind == "datetime"]
    if dated:
        raise ExportError(f"Column(s) {dated} hold dates, which ONNX graphs cannot take.")
    if getattr(model, "native_booster", False):  # the runtime's BoosterModel
        if precision == "double":
            raise ExportError("a native Booster's graph computes in float")
        graph = convert_booster(model, len(schema.columns))
        inputs = _split_input(graph, schema, precision)
        return Converted(graph, inputs, [o.name for o in graph.graph.output], precision)
    model = without_feature_names(model, [model, *(step for _, step in steps(model))])
    classifier = _classifier(model)
    if precision == "double":
        model = _cast_before_tree(model)
    options = {id(classifier): {"zipmap": False}} if classifier is not None else None
    native = _starts_with_columns(model)
    if not native and any(c.kind == "string" for c in schema.columns):
        raise ExportError(
            "String columns can only be exported when the model starts with a "
            "ColumnTransformer that encodes them."
        )
    if native:
        types = [(c.name, _tensor_type(c.kind, precision)[0]) for c in schema.columns]
    else:
        width = len(schema.columns)
        types = [("X", _tensor_type("float", precision)[0].__class__([None, width]))]
    try:
        graph = convert_sklearn(model, initial_types=types, options=options,
                                target_opset=TARGET_OPSET)  # fmt: skip
    except Exception as exc:  # skl2onnx raises many types; the user needs one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"skl2onnx could not convert the model ({precision}): {first}") from None
    if native:
        inputs = [
            GraphInput(col.name, arg.name, _NUMPY[_tensor_type(col.kind, precision)[1]])
            for col, arg in zip(schema.columns, graph.graph.input, strict=True)
        ]
    else:
        inputs = _split_input(graph, schema, precision)
    outputs = [o.name for o in graph.graph.output]
    return Converted(graph, inputs, outputs, precision)


def _split_input(graph: Any, schema: InputSchema, precision: str) -> list[GraphInput]:
    """Replace the graph's one ``[N, width]`` input by one ``[N, 1]`` input per column."""
    from onnx import TensorProto, helper

    elem = TensorProto.DOUBLE if precision == "double" else TensorProto.FLOAT
    (matrix,) = graph.graph.input
    taken = {n.name for n in graph.graph.node} | {o.name for o in graph.graph.output}
    taken |= {i.name for i in graph.graph.initializer}
    names = [identifier(c.name, taken) for c in schema.columns]
    graph.graph.input.remove(matrix)
    graph.graph.input.extend(helper.make_tensor_value_info(n, elem, [None, 1]) for n in names)
    concat = helper.make_node("Concat", names, [matrix.name], axis=1, name="jd_columns")
    graph.graph.node.insert(0, concat)
    dtype = _NUMPY[precision]
    return [GraphInput(c.name, n, dtype) for c, n in zip(schema.columns, names, strict=True)]


def quantize_graph(graph: Any, model_class: str) -> Any:
    """Dynamic int8 quantisation of a float graph with MatMul/Gemm; refuse any other."""
    import os
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if not any(n.op_type in ("MatMul", "Gemm") for n in graph.graph.node):
        raise ExportError(
            f"Quantisation would not change this {model_class} graph: onnxruntime's "
            "quantiser only touches MatMul/Gemm (MLPs), not trees or linear operators; "
            "export without quantize."
        )
    with tempfile.TemporaryDirectory(prefix="jd-quant-") as tmp:
        src, dst = os.path.join(tmp, "in.onnx"), os.path.join(tmp, "out.onnx")
        onnx.save(graph, src)
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        return onnx.load(dst)
