"""XGBoost and LightGBM inside skl2onnx, via onnxmltools; and their native Boosters.

skl2onnx converts only scikit-learn's own estimators; onnxmltools has converters for the
boosters, and skl2onnx's ``update_registered_converter`` makes them usable as a step of a
pipeline (the route skl2onnx's own tutorials take). Registered once per process, and only
for the libraries that are installed: neither is a dependency of jupyter_deploy.

Measured (onnxmltools 1.16, xgboost 3.2, lightgbm 4.7, iris and a regression set rounded
to 0.1): bare and piped classifiers agree on every row with probabilities within 2e-7;
regressors within 6e-5 absolute. Their trees get the same float32 cast as scikit-learn's
(:mod:`.convert`): XGBoost computes in float32 itself; LightGBM compares doubles, so for
it the cast is an approximation the parity check guards (no row flipped in our tests).

A native Booster (deployed as the runtime's ``BoosterModel``) is converted by onnxmltools
directly, in float (XGBoost's own precision) at onnxmltools' own opset, and its graph
keeps only what the Booster's ``predict`` gives: the value of a regression, the
probabilities of a classification objective (the positive class's for a binary one), so
parity compares like with like.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

# (module, class, alias, is a classifier): the scikit-learn API classes of the boosters.
_BOOSTERS = [
    ("xgboost", "XGBClassifier", "XGBoostXGBClassifier", True),
    ("xgboost", "XGBRegressor", "XGBoostXGBRegressor", False),
    ("lightgbm", "LGBMClassifier", "LightGbmLGBMClassifier", True),
    ("lightgbm", "LGBMRegressor", "LightGbmLGBMRegressor", False),
]
_CONVERTERS = {
    "xgboost": ("onnxmltools.convert.xgboost.operator_converters.XGBoost", "convert_xgboost"),
    "lightgbm": ("onnxmltools.convert.lightgbm.operator_converters.LightGbm", "convert_lightgbm"),
}
_registered: set[str] = set()


def register(model_modules: set[str]) -> None:
    """Register the converters of the boosters among ``model_modules`` (top-level names)."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    for module, cls_name, alias, classifier in _BOOSTERS:
        if module not in model_modules or alias in _registered:
            continue
        try:
            cls = getattr(importlib.import_module(module), cls_name)
            conv_module, conv_name = _CONVERTERS[module]
            converter = getattr(importlib.import_module(conv_module), conv_name)
        except ImportError:  # onnxmltools missing: the step is refused, naming it
            continue
        options: dict[str, Any] | None = None
        if classifier:
            options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
        shapes = (
            calculate_linear_classifier_output_shapes
            if classifier
            else calculate_linear_regressor_output_shapes
        )
        update_registered_converter(cls, alias, shapes, converter, options=options)
        _registered.add(alias)


def without_feature_names(model: Any, found: list[Any]) -> Any:
    """A copy of ``model`` whose XGBoost boosters forget their column names.

    onnxmltools reads split features as ``f<index>`` and refuses a booster trained on a
    DataFrame ("feature names should follow pattern 'f%d'"); the graph's inputs carry the
    names instead. The deployed model is not touched: parity runs on the original.
    """
    import copy

    if not any(type(step).__module__.startswith("xgboost") for step in found):
        return model
    clone = copy.deepcopy(model)
    nested = list(clone.get_params(deep=True).values()) if hasattr(clone, "get_params") else []
    for step in [clone, *nested]:
        if type(step).__module__.startswith("xgboost") and hasattr(step, "get_booster"):
            step.get_booster().feature_names = None
    return clone


def convert_booster(model: Any, width: int) -> Any:
    """The ONNX graph of ``model.booster`` with one ``[N, width]`` float input ``X``."""
    import copy

    from onnx import TensorProto, helper
    from onnxmltools import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    types = [("X", FloatTensorType([None, width]))]
    if model.library == "xgboost":
        booster = copy.copy(model.booster)  # onnxmltools wants features named f0, f1...
        booster.feature_names = None
        graph = convert_xgboost(booster, initial_types=types)
    else:
        graph = convert_lightgbm(model.booster, initial_types=types, zipmap=False)
    outputs = list(graph.graph.output)
    if len(outputs) == 2:  # label + probabilities: the Booster predicts probabilities
        graph.graph.output.remove(outputs[0])
        width_out = np.asarray(model.predict(np.zeros((1, width), np.float32))).ndim
        if width_out == 1:  # binary: the positive class's probability, one per row
            one = helper.make_tensor("jd_positive", TensorProto.INT64, [], [1])
            graph.graph.initializer.append(one)
            graph.graph.node.append(
                helper.make_node(
                    "Gather", [outputs[1].name, "jd_positive"], ["probability"], axis=1
                )
            )
            graph.graph.output.remove(outputs[1])
            graph.graph.output.append(
                helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None])
            )
    return graph
