"""Monitoring's cost by part, measured by switching parts off inside one running replica.

``python bench/monitoring_parts.py [--rounds 10] [--seconds 3] [--connections 32] [--out DIR]``

A monitored deployment against an unmonitored one is also one process against another,
and two identical deployments in one cluster differed by 8-13 % in throughput here
(docs/benchmarks.md). So this deploys the iris pipeline once (one replica, monitoring
on with its defaults: payload log at 100 %, live importance at 2 rows/s) and, between
wrk runs (c=32 unless ``--connections`` says otherwise), sets the replica's telemetry
parts to ``None`` and back through Ray's ``__ray_call__`` (a bench probe: it reaches
into Serve's private replica objects):

- ``all``: everything monitoring does;
- ``no_log``: no payload log;
- ``no_importance``: no live importance (no rows offered, none explained);
- ``neither``: counts, latency, errors, drift, predictions kept for feedback;
- ``off``: the request path skips telemetry, as with ``monitoring=False`` (the recorder's
  once-a-second push of empty counts goes on).

Each round runs every state once, the order rotated per round. Per state: req/s over
``off``'s in the same round, and the replica's CPU (psutil) per request over ``off``'s.
The cluster is its own (ports 6850/8850 unless ``JD_RAY_PORT``/``JD_HTTP_PORT`` say
otherwise, a fresh home), stopped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from isolated import own_cluster
from loadgen import require_wrk, run_wrk
from peer_models import fit, records_body
from report import emit

# state -> (telemetry on the request path, payload log, live importance)
STATES: dict[str, tuple[bool, bool, bool]] = {
    "all": (True, True, True),
    "no_log": (True, False, True),
    "no_importance": (True, True, False),
    "neither": (True, False, False),
    "off": (False, False, False),
}


def _set_state(actor: Any, parts: tuple[bool, bool, bool]) -> int:
    """In the replica: keep its telemetry's parts (first call), switch each as ``parts`` says.

    Returns the replica's pid, for its CPU times."""
    import os

    replica = actor._replica_impl._user_callable_wrapper._callable  # Serve's, private
    if not hasattr(replica, "_bench_parts"):
        tel = replica._telemetry
        replica._bench_parts = (tel, tel.payloads, tel.importance, tel.observations.explained)
    tel, payloads, importance, explained = replica._bench_parts
    on, log, explain = parts
    tel.payloads = payloads if log else None
    tel.importance = importance if explain else None
    tel.observations.explained = explained if explain else None
    replica._telemetry = tel if on else None
    return os.getpid()


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--connections", type=int, default=32, help="wrk's; 1: no batching")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "parts")
    return p.parse_args()


def _replica(app: str) -> Any:
    import ray

    (found,) = [a for a in ray.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith(f"SERVE_REPLICA::{app}#")]  # fmt: skip
    return ray.get_actor(found["name"], found["namespace"])


def main() -> None:
    a = _args()
    require_wrk()
    home = own_cluster("parts", 6850, 8850, "35000-35499")
    import ray

    import jupyter_deploy as jd

    model, sample = fit("iris")
    body = records_body(sample, 1)
    out: dict[str, Any] = {"started": time.strftime("%F %T"), "states": list(STATES),
                           "connections": a.connections}  # fmt: skip
    dep = None
    try:  # the cluster is stopped however this ends: its home is deleted at exit
        dep = jd.deploy(model, name="parts", sample=sample, progress=False,
                        min_replicas=1, max_replicas=1)  # fmt: skip
        url = f"{dep.url}/predict"
        run_wrk(url, body, 32, 3.0, dep.token)  # warm-up; live importance builds its
        time.sleep(4)  # explainer in the seconds after the first traffic
        actor = _replica("parts")
        proc = psutil.Process(ray.get(actor.__ray_call__.remote(_set_state, STATES["all"])))
        rows = []
        names = list(STATES)
        for rnd in range(a.rounds):
            got: dict[str, tuple[float, float]] = {}
            for state in names[rnd % len(names) :] + names[: rnd % len(names)]:
                ray.get(actor.__ray_call__.remote(_set_state, STATES[state]))
                run_wrk(url, body, a.connections, 0.5, dep.token)  # settle
                before = sum(proc.cpu_times()[:2])
                res = run_wrk(url, body, a.connections, a.seconds, dep.token)
                cpu_us = (sum(proc.cpu_times()[:2]) - before) / max(res.requests, 1) * 1e6
                got[state] = (res.rps, cpu_us)
                rows.append({"round": rnd, "state": state, "rps": res.rps, "errors": res.errors,
                             "replica_cpu_us_per_request": cpu_us})  # fmt: skip
            print(f"r{rnd} " + "  ".join(f"{s} {got[s][0]:.0f} req/s {got[s][1]:.0f} us"
                                         for s in names), flush=True)  # fmt: skip
        out["rows"] = rows
        out["summary"] = _summary(rows, names, a.rounds)
    finally:
        if dep is not None:
            dep.delete()
        jd.stop_cluster()
        home.cleanup()
    emit(out, a.out, "monitoring_parts.json")


def _summary(rows: list[dict[str, Any]], names: list[str], rounds: int) -> dict[str, Any]:
    """Per state, paired with ``off`` in each round: req/s ratio and replica CPU difference."""
    by = {(r["round"], r["state"]): r for r in rows}
    out: dict[str, Any] = {}
    for state in names:
        ratio = [by[i, state]["rps"] / by[i, "off"]["rps"] for i in range(rounds)]
        extra = [by[i, state]["replica_cpu_us_per_request"]
                 - by[i, "off"]["replica_cpu_us_per_request"] for i in range(rounds)]  # fmt: skip
        out[state] = {"rps_over_off_median": statistics.median(ratio),
                      "rps_over_off_mean": statistics.mean(ratio),
                      "replica_cpu_us_over_off_median": statistics.median(extra),
                      "errors": sum(by[i, state]["errors"] for i in range(rounds))}  # fmt: skip
    return out


if __name__ == "__main__":
    main()
