"""Predict with an exported ONNX graph using onnxruntime and numpy alone.

This file is copied beside every ONNX export as ``<name>_predict.py``; it must not import
jupyter_deploy or scikit-learn, so it runs wherever ``pip install onnxruntime`` does.

    python churn_predict.py              # predicts the example rows stored with the graph
    python churn_predict.py rows.json    # a JSON list of records {"column": value, ...}

It prints one JSON object: each graph output (``label`` and ``probabilities`` for a
classifier, ``variable`` for a regressor) as a list.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

HERE = Path(__file__).resolve().parent
INPUTS_FILE = "model.inputs.json"  # replaced by the export with the graph's own file


def load() -> tuple[dict[str, Any], Any]:
    """The column -> input map and an inference session on the graph beside this file."""
    spec = json.loads((HERE / INPUTS_FILE).read_text())
    sess = ort.InferenceSession(str(HERE / spec["graph"]), providers=["CPUExecutionProvider"])
    return spec, sess


def predict(spec: dict[str, Any], sess: Any, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Run the graph on ``records``; one ``[N, 1]`` tensor per column, typed as the map says."""
    feeds = {}
    for item in spec["inputs"]:
        values = [record[item["column"]] for record in records]
        if item["dtype"] == "str":
            array = np.array([str(v) for v in values], dtype=object)
        else:
            array = np.array(values, dtype=item["dtype"])
        feeds[item["input"]] = array.reshape(-1, 1)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds), strict=True))


def main(argv: list[str]) -> int:
    spec, sess = load()
    records = json.loads(Path(argv[1]).read_text()) if len(argv) > 1 else spec["example"]
    outputs = predict(spec, sess, records)
    print(json.dumps({name: np.asarray(value).tolist() for name, value in outputs.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
