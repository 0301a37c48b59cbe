"""Two versions live: what a split, a shadow and a canary cost, and how fast a bad canary goes.

``python bench/traffic.py [--rounds 3] [--seconds 5] [--out DIR]``, on a cluster of its own
(own JD_HOME, BENTOML_HOME and ports), same model in every version (iris
``LogisticRegression``), so only the routing differs. Each round, in alternating order:

* c=32 req/s, one row per request: a 90/10 split of two versions / the unsplit deployment
  (target >= 0.9), and the replicas' resident memory with one and two versions loaded;
* c=1 p50: with a shadow at rate 1.0 / without (target <= 1.15);
* a canary that fails half its requests (``interval_s`` 5, ``min_requests`` 20) under a
  steady client: seconds from its first error to the controller's rollback, and to the
  last error callers saw (target <= 2 intervals).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from isolated import own_cluster
from loadgen import run_wrk
from report import emit, medians

INTERVAL_S = 5


class FailsOnHalf:
    """Predicts in this process (so it deploys); in a replica, fails half the requests."""

    def __init__(self, model: Any) -> None:
        self.model, self.pid = model, os.getpid()

    def predict(self, x: Any) -> Any:
        if os.getpid() != self.pid and random.random() < 0.5:
            raise RuntimeError("broken canary")
        return self.model.predict(x)


def _replica_rss_mb(name: str) -> float:
    """Resident memory of the deployment's replica processes (Ray titles them)."""
    import psutil

    total = 0
    for proc in psutil.process_iter(["cmdline", "memory_info"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if f"ServeReplica:{name}:" in cmdline and proc.info["memory_info"] is not None:
            total += proc.info["memory_info"].rss
    return total / 2**20


def _body(row: dict[str, float]) -> str:
    return json.dumps({"instances": [row]})


def _rollback_time(dep: Any, model: Any, x: Any, row: dict[str, float]) -> dict[str, float]:
    """Deploy a failing canary under a steady client; when did errors start, and stop?"""
    import jupyter_deploy as jd

    errors: list[float] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=10) as http:
            while not stop.is_set():
                r = http.post(f"{dep.url}/predict", json={"instances": [row]},
                              headers={"Authorization": f"Bearer {dep.token}"})  # fmt: skip
                if r.status_code >= 500:
                    errors.append(time.monotonic())
                time.sleep(0.005)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    policy = {"steps": [0.25, 0.5, 1.0], "interval_s": INTERVAL_S, "min_requests": 20}
    jd.deploy(FailsOnHalf(model), name=dep.name, sample=x, canary=policy, progress=False)
    deadline = time.monotonic() + 10 * INTERVAL_S
    while time.monotonic() < deadline:
        canary = jd.get(dep.name).traffic()["canary"]
        if canary["state"] != "running":
            break
        time.sleep(0.1)
    decided = time.monotonic()
    time.sleep(2)
    stop.set()
    thread.join()
    if canary["state"] != "rolled_back" or not errors:
        raise SystemExit(f"the failing canary was not rolled back: {canary}")
    return {"first_error_to_rollback_s": decided - errors[0],
            "first_to_last_error_s": errors[-1] - errors[0],
            "in_intervals": (errors[-1] - errors[0]) / INTERVAL_S}  # fmt: skip


def one_round(i: int, seconds: float) -> dict[str, float]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import jupyter_deploy as jd

    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    row = x.iloc[0].to_dict()
    model = LogisticRegression(max_iter=500).fit(x, y)
    name = f"traffic{i}"
    jd.deploy(model, name=name, sample=x, progress=False)
    dep = jd.deploy(model, name=name, sample=x, progress=False)  # v2, live
    url, body = f"{dep.url}/predict", _body(row)
    out: dict[str, float] = {}
    runs = [("unsplit", {2: 1.0}), ("split", {2: 0.9, 1: 0.1})]
    for label, weights in runs if i % 2 == 0 else runs[::-1]:
        dep = dep.split(weights)
        run_wrk(url, body, 32, 1, dep.token)  # warm-up
        out[f"{label}_c32_rps"] = run_wrk(url, body, 32, seconds, dep.token).rps
        out[f"{label}_replica_rss_mb"] = _replica_rss_mb(name)
    dep = dep.split({2: 1.0})
    runs = [("plain", None), ("shadow", 1)]
    for label, shadow in runs if i % 2 == 0 else runs[::-1]:
        dep = dep.shadow(shadow, rate=1.0)
        run_wrk(url, body, 1, 1, dep.token)
        out[f"{label}_c1_p50_ms"] = run_wrk(url, body, 1, seconds, dep.token).p50_ms
    dep = dep.shadow(None)
    out["split_over_unsplit"] = out["split_c32_rps"] / out["unsplit_c32_rps"]
    out["shadow_over_plain_p50"] = out["shadow_c1_p50_ms"] / out["plain_c1_p50_ms"]
    out.update(_rollback_time(dep, model, x, row))
    jd.undeploy(name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    tmp = own_cluster("traffic", 6610, 8610, "37000-37499")
    import jupyter_deploy as jd

    rounds = []
    try:
        for i in range(args.rounds):
            result = one_round(i, args.seconds)
            print(f"round {i + 1}: " + ", ".join(f"{k} {v:.3g}" for k, v in result.items()),
                  file=sys.stderr)  # fmt: skip
            rounds.append(result)
    finally:
        jd.stop_cluster(forget=True)
        tmp.cleanup()
    emit({"rounds": rounds, "median": medians(rounds)}, args.out, "traffic.json")


if __name__ == "__main__":
    main()
