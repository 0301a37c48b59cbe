"""Stream inference: one consumer's sustained events/s, and latency at a paced 1,000 events/s.

``python bench/stream.py [--events 60000] [--seconds 20] [--rounds 1] [--out DIR]``.
A cluster of its own (own JD_HOME, BENTOML_HOME and ports, stopped at the end) and a
``redis-server`` of its own on a free loopback port. The model is the iris
``StandardScaler + LogisticRegression`` pipeline; each event is one record as a JSON
``data`` field, as a producer would send it. Each round:

* throughput: ``--events`` events waiting in the input stream, then ``dep.stream`` with
  one consumer (batch 256); events/s from its first answer to its last (the Bento load
  before the first answer is left out: it is a start-up cost, not a rate);
* latency: a producer paced at 1,000 events/s for ``--seconds`` to a fresh stream; each
  event's latency is its output entry's id minus its input entry's id: both ids are the
  Redis server's clock in ms when the entry was added, so no client clock takes part
  (resolution 1 ms). The first 2 s are a warm-up and left out.

Targets (issue 14): >= 5,000 events/s; p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bento_ref import stop_group
from isolated import own_cluster
from report import emit, medians

TARGET_RATE, TARGET_P99_MS = 5_000.0, 100.0
WARMUP_S = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import redis

    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(300):
        try:
            if redis.Redis.from_url(url).ping():
                return proc, url
        except redis.ConnectionError:
            time.sleep(0.1)
    stop_group(proc)
    raise SystemExit("redis-server did not answer")


def _wait(predicate: Any, timeout: float, what: str, interval: float = 0.01) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout} s waiting for {what}")


def _ms(entry_id: str) -> int:
    return int(entry_id.split("-")[0])


def throughput(
    dep: Any, r: Any, url: str, records: list[str], n: int, tag: str
) -> dict[str, float]:
    """Events/s of one consumer over ``n`` events that were waiting when it started."""
    src, out = f"t-in-{tag}", f"t-out-{tag}"
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.xadd(src, {"data": records[i % len(records)], "id": str(i)})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    job = dep.stream(url, src, out)
    first = _wait(lambda: r.xlen(out) > 0, 300, "the first answer", 0.005)
    n0 = r.xlen(out)
    reported = []
    while r.xlen(out) < n:
        time.sleep(0.5)
        reported.append(job.status().events_per_s)
    last = time.monotonic()
    job.stop()
    dead = r.xlen(f"{src}:dead")
    if dead or r.xlen(out) != n:
        raise SystemExit(f"throughput run: {r.xlen(out)} answers, {dead} dead letters of {n}")
    rate = (n - n0) / (last - first)
    return {"events_per_s": rate, "status_events_per_s_max": max(reported, default=0.0)}


def latency(dep: Any, r: Any, url: str, records: list[str], seconds: float,
            tag: str) -> dict[str, float]:  # fmt: skip
    """p50/p99 of XADD -> output entry, by the Redis server's own clock, at 1,000 events/s."""
    src, out = f"l-in-{tag}", f"l-out-{tag}"
    job = dep.stream(url, src, out)
    r.xadd(src, {"data": records[0], "id": "ready"})  # the Bento loaded before timing
    _wait(lambda: r.xlen(out) > 0, 300, "the first answer", 0.005)
    n, rate = int(seconds * 1000), 1000.0
    sent: dict[str, int] = {}
    start = time.monotonic()
    for i in range(n):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent[r.xadd(src, {"data": records[i % len(records)], "id": str(i)})] = i
    took = time.monotonic() - start
    _wait(lambda: r.xlen(out) >= n + 1, 120, "every answer")
    job.stop()
    warm = int(WARMUP_S * rate)
    lat = sorted(_ms(out_id) - _ms(a["source_id"]) for out_id, a in r.xrange(out)
                 if a.get("id") != "ready" and sent[a["source_id"]] >= warm)  # fmt: skip
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return {"paced_events_per_s": n / took, "p50_ms": q[49], "p99_ms": q[98],
            "max_ms": float(lat[-1])}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    tmp = own_cluster("stream", 6750, 8750, "33800-33999")

    import redis
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import jupyter_deploy as jd

    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x, y)
    records = [json.dumps(rec) for rec in json.loads(x.to_json(orient="records"))]
    proc, url = _redis(Path(tmp.name))
    load_before = os.getloadavg()
    rounds = []
    try:
        dep = jd.deploy(pipe, name="iris", sample=x, progress=False)
        r = redis.Redis.from_url(url, decode_responses=True)
        for i in range(args.rounds):
            result = {**throughput(dep, r, url, records, args.events, str(i)),
                      **latency(dep, r, url, records, args.seconds, str(i))}  # fmt: skip
            print(f"round {i + 1}: " + ", ".join(f"{k} {v:.1f}" for k, v in result.items()),
                  file=sys.stderr)  # fmt: skip
            rounds.append(result)
    finally:
        jd.stop_cluster(forget=True)
        stop_group(proc)
        tmp.cleanup()
    med = medians(rounds)
    emit({"rounds": rounds, "median": med, "load_avg_before": load_before,
          "load_avg_after": os.getloadavg(),
          "targets": {"events_per_s": [">=", TARGET_RATE, med["events_per_s"] >= TARGET_RATE],
                      "p99_ms": ["<=", TARGET_P99_MS, med["p99_ms"] <= TARGET_P99_MS]}},
         args.out, "stream.json")  # fmt: skip


if __name__ == "__main__":
    main()
