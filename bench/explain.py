"""Explanations: /explain vs /predict latency, and predict throughput beside explain load.

``python bench/explain.py [--seconds 10] [--out DIR]``, on a cluster of its own (own
JD_HOME, BENTOML_HOME and ports), with wrk on loopback (bench/loadgen.py):

* c=1 p50 of ``/explain`` and ``/predict`` (one row) for a 200-tree random forest and for
  a linear pipeline (one-hot + scaling + logistic regression); target: explain <= 5x;
* c=32 ``/predict`` throughput of the forest alone, then with 2 connections of
  ``/explain`` beside it (explanations run in one thread per replica);
* c=32 ``/predict`` throughput of the forest with live global importance off, at its
  default rate (2 rows/s) and at 20 rows/s: three deployments of the same model live
  at once, measured in turn, round after round (``--part importance`` runs only this).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from isolated import own_cluster
from loadgen import finish_wrk, post_json, require_wrk, run_wrk, start_wrk
from report import emit, medians

IMPORTANCE_RATES = (0.0, 2.0, 20.0)  # rows of live traffic explained per second


def _data(n: int = 2000) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    x = pd.DataFrame({f"f{i}": rng.normal(0, 1, n) for i in range(6)})
    x["sex"] = rng.choice(["F", "M"], n)
    x["region"] = rng.choice(["north", "south", "east", "west"], n)
    y = ((x["f0"] + x["f1"] * x["f2"] > 0) ^ (x["region"] == "south")).astype(int)
    return x, y


def _models(x: Any, y: Any) -> dict[str, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    nums = [c for c in x.columns if c.startswith("f")]
    onehot = ColumnTransformer([("cat", OneHotEncoder(), ["sex", "region"])],
                               remainder="passthrough")  # fmt: skip
    scaled = ColumnTransformer([("num", StandardScaler(), nums),
                                ("cat", OneHotEncoder(), ["sex", "region"])])  # fmt: skip
    return {
        "forest200": make_pipeline(onehot, RandomForestClassifier(200, random_state=0, n_jobs=1)),
        "linear": make_pipeline(scaled, LogisticRegression(max_iter=1000)),
    }


def _importance(model: Any, x: Any, body: str, args: Any) -> dict[str, Any]:
    """c=32 predict throughput with live importance sampling off and on (same run)."""
    import jupyter_deploy as jd

    deps = {rate: jd.deploy(model, name=f"imp{int(rate)}", sample=x, progress=False,
                            importance_rows_per_s=rate) for rate in IMPORTANCE_RATES}  # fmt: skip
    rounds = []
    for i in range(args.rounds):  # the order turns each round: drifting load hits all alike
        order = list(deps.items())[:: -1 if i % 2 else 1]
        rounds.append({f"rps_{rate:g}": run_wrk(f"{dep.url}/predict", body, 32, args.seconds,
                                                dep.token).rps for rate, dep in order})  # fmt: skip
    figures: dict[str, Any] = {"rounds": rounds, "median_rps": medians(rounds)}
    off = figures["median_rps"]["rps_0"]
    for rate in IMPORTANCE_RATES[1:]:
        figures[f"ratio_{rate:g}_vs_off"] = figures["median_rps"][f"rps_{rate:g}"] / off
        live = deps[rate].importance(window_s=600)
        figures[f"rows_explained_{rate:g}"] = live.attrs["rows"]
    for dep in deps.values():
        dep.delete()
    print(f"importance: {figures}", file=sys.stderr)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--part", choices=("all", "importance"), default="all")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_wrk()
    tmp = own_cluster("explain", 6595, 8595, "34000-34399")
    import jupyter_deploy as jd

    x, y = _data()
    body = json.dumps({"instances": x.head(1).to_dict(orient="records")})
    result: dict[str, Any] = {}
    try:
        models = _models(x, y)
        result["importance"] = _importance(models["forest200"].fit(x, y), x, body, args)
        for name, model in models.items() if args.part == "all" else ():
            dep = jd.deploy(model.fit(x, y), name=name, sample=x, progress=False)
            warm = post_json(f"{dep.url}/explain", body, dep.token, timeout=60)  # builds it
            assert warm.status_code == 200, warm.text
            figures: dict[str, Any] = {"method": warm.json()["method"]}
            for route in ("predict", "explain"):
                run = run_wrk(f"{dep.url}/{route}", body, 1, args.seconds, dep.token)
                figures[f"{route}_c1"] = run.to_dict()
            figures["ratio_p50"] = figures["explain_c1"]["p50_ms"] / figures["predict_c1"]["p50_ms"]
            if name == "forest200":  # alternated, so the machine's other load hits both
                for i in range(2):
                    alone = run_wrk(f"{dep.url}/predict", body, 32, args.seconds, dep.token)
                    proc, script = start_wrk(f"{dep.url}/explain", body, 2, args.seconds,
                                             dep.token)  # fmt: skip
                    beside = run_wrk(f"{dep.url}/predict", body, 32, args.seconds, dep.token)
                    explain = finish_wrk(proc, script)
                    figures[f"predict_c32_alone_{i}"] = alone.to_dict()
                    figures[f"predict_c32_with_explain_c2_{i}"] = beside.to_dict()
                    figures[f"explain_c2_beside_{i}"] = explain.to_dict()
            result[name] = figures
            print(f"{name}: explain/predict p50 {figures['ratio_p50']:.2f}x", file=sys.stderr)
            dep.delete()
    finally:
        jd.stop_cluster(forget=True)
        tmp.cleanup()
    emit(result, args.out, "explain.json")


if __name__ == "__main__":
    main()
