"""runtime="onnx" against the default runtime: c=1 p50 and c=32 throughput, same run.

``python bench/onnx_runtime.py [--rounds 3] [--seconds 5] [--out DIR]``. On a cluster of
its own (own JD_HOME, BENTOML_HOME and ports, stopped and forgotten at the end), four
deployments of one replica each: the iris pipeline (StandardScaler + LogisticRegression)
and a 200-tree RandomForest on iris, each with ``runtime="python"`` and
``runtime="onnx"``. Every round runs wrk against all four in turn (one row per request,
c=1 then c=32), so each onnx / python ratio compares runs made under the same background
load. Needs ``wrk`` (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from isolated import own_cluster
from loadgen import require_wrk, run_wrk
from report import emit

RUNTIMES = ("python", "onnx")


def deploy_all(x: Any, y: Any) -> dict[tuple[str, str], Any]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import jupyter_deploy as jd

    models = {
        "iris": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y),
        "forest200": RandomForestClassifier(200, random_state=0).fit(x, y),
    }
    return {
        (name, runtime): jd.deploy(model, name=f"{name}-{runtime}", sample=x, runtime=runtime,
                                   min_replicas=1, max_replicas=1, progress=False)
        for name, model in models.items()
        for runtime in RUNTIMES
    }  # fmt: skip


def one_round(deps: dict[tuple[str, str], Any], body: str, seconds: float) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for (name, runtime), dep in deps.items():
        url = f"{dep.url}/predict"
        one = run_wrk(url, body, 1, seconds, dep.token)
        many = run_wrk(url, body, 32, seconds, dep.token)
        figures[f"{name}/{runtime}"] = {"p50_ms_c1": one.p50_ms, "rps_c32": many.rps,
                                        "errors": one.errors + many.errors}  # fmt: skip
    for name in ("iris", "forest200"):
        onnx, py = figures[f"{name}/onnx"], figures[f"{name}/python"]
        figures[f"{name} onnx/python"] = {
            "p50_c1": onnx["p50_ms_c1"] / py["p50_ms_c1"],
            "rps_c32": onnx["rps_c32"] / py["rps_c32"],
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    require_wrk()
    os.environ.setdefault("JD_NUM_CPUS", "4")
    tmp = own_cluster("onnx", 6610, 8610, "34000-34399")

    from sklearn.datasets import load_iris

    import jupyter_deploy as jd

    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    body = json.dumps({"instances": [x.iloc[0].to_dict()]})
    try:
        deps = deploy_all(x, y)
        rounds = []
        for i in range(args.rounds):
            rounds.append(one_round(deps, body, args.seconds))
            ratios = {k: v for k, v in rounds[-1].items() if "/python" in k and " " in k}
            print(f"round {i + 1}: {json.dumps(ratios)}", file=sys.stderr)
    finally:
        jd.stop_cluster(forget=True)
        tmp.cleanup()
    median = {
        key: {f: statistics.median(r[key][f] for r in rounds) for f in rounds[0][key]}
        for key in rounds[0]
    }
    emit(
        {"rounds": rounds, "median": median, "load": os.getloadavg()}, args.out, "onnx_runtime.json"
    )


if __name__ == "__main__":
    main()
