"""CPU seconds per request of every process of the cluster, by variant, and the idle path.

``python bench/cpu.py [--rounds 3] [--seconds 4] [--knob] [--idle 65] [--out DIR]``

Wall-clock figures on a machine shared with other work swing by 2x between runs; the CPU
a request costs barely moves. So each variant of the iris pipeline (records in the body,
auth on, one replica each, on a cluster of its own) is loaded with wrk at c=32 while the
user + system CPU time of every process of the cluster is read before and after
(psutil): the replicas, HAProxy, Serve's proxy and controller, our aggregator,
payload-log and registry actors, and Ray's own daemons. Each process's seconds are
divided by the requests wrk counted and summed by role (:func:`role`).

Variants: ``mon`` (monitoring on: metrics, drift, feedback, payload log at 100 %) and
``nomon``; with ``--knob`` also both with ``RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD``
set to 0 and to 1 in the replica's environment (a per-deployment runtime_env, so the
pairs share one cluster). Each round also takes the p50 at c=1. ``--idle S`` then times
``mon``'s first request after pauses of 2 s and of ``S`` s, alternated three times.
"""

from __future__ import annotations

import argparse
import http.client
import os
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

KNOB = "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD"
# label -> (monitoring, environment of the replica process)
VARIANTS: dict[str, tuple[bool, dict[str, str]]] = {"mon": (True, {}), "nomon": (False, {})}
KNOB_VARIANTS = {
    "mon-thread": (True, {KNOB: "1"}),
    "mon-inline": (True, {KNOB: "0"}),
    "nomon-thread": (False, {KNOB: "1"}),
    "nomon-inline": (False, {KNOB: "0"}),
}
ROLES = (("ray::ServeReplica:", "replica"), ("ray::Aggregator", "aggregator"),
         ("ray::PayloadLog", "payload_log"), ("ray::Registry", "registry"),
         ("ray::ServeController", "serve_controller"), ("ray::ProxyActor", "serve_proxy"),
         ("ray::HAProxyManager", "serve_proxy"))  # fmt: skip


def role(proc: psutil.Process, app: str) -> str:
    """What a process of the cluster is, from its title (a replica: of ``app`` or another)."""
    try:
        argv = proc.cmdline()
    except psutil.Error:
        return "gone"
    title = argv[0] if argv else ""
    if "haproxy" in os.path.basename(title):
        return "haproxy"
    for prefix, name in ROLES:
        if title.startswith(prefix):
            if name == "replica":
                return "replica" if title.startswith(f"{prefix}{app}:") else "other_replicas"
            return name
    if "gcs_server" in title or "raylet" in title:
        return "ray_daemons"
    return "ray_other"


def cluster_processes(head_pid: int, haproxy_dir: str) -> list[psutil.Process]:
    """The head's process tree, plus HAProxy (it daemonises out of the tree)."""
    head = psutil.Process(head_pid)
    procs = [head, *head.children(recursive=True)]
    pids = {p.pid for p in procs}
    for p in psutil.process_iter(["cmdline"]):
        argv = p.info.get("cmdline") or []
        if p.pid not in pids and argv and "haproxy" in argv[0] and haproxy_dir in " ".join(argv):
            procs.append(p)
    return procs


def _cpu(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
            out[p.pid] = t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return out


def measured(procs: list[psutil.Process], app: str, run: Any) -> tuple[Any, dict[str, float]]:
    """``run()``'s result and the CPU seconds each role spent during it."""
    before = _cpu(procs)
    result = run()
    after = _cpu(procs)
    spent: dict[str, float] = {}
    for p in procs:
        if p.pid in before and p.pid in after:
            key = role(p, app)
            spent[key] = spent.get(key, 0.0) + after[p.pid] - before[p.pid]
    return result, spent


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--knob", action="store_true", help=f"add the {KNOB} variants")
    p.add_argument("--idle", type=float, default=0.0, help="then the idle-path probes (s)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "cpu")
    return p.parse_args()


def _with_replica_env(envs: dict[str, dict[str, str]]) -> None:
    """Give named deployments a replica environment (bench only: Serve's runtime_env)."""
    from jupyter_deploy.rollout import serving

    plain = serving.deployment_options

    def options(target: Any, autoscaling: Any) -> dict[str, Any]:
        opts = plain(target, autoscaling)
        env = envs.get(target.spec.name)
        if env:
            opts["ray_actor_options"] = {**opts["ray_actor_options"],
                                         "runtime_env": {"env_vars": env}}  # fmt: skip
        return opts

    serving.deployment_options = options  # type: ignore[assignment]


def main() -> None:
    a = _args()
    require_wrk()
    home = own_cluster("cpu", 6800, 8800, "34500-34999")
    import jupyter_deploy as jd
    from jupyter_deploy.control.cluster import read_state
    from jupyter_deploy.control.ingress import runtime_dir
    from jupyter_deploy.settings import Settings

    variants = {**VARIANTS, **(KNOB_VARIANTS if a.knob else {})}
    _with_replica_env({f"cpu-{k}": env for k, (_, env) in variants.items() if env})
    model, sample = fit("iris")
    bodies = {1: records_body(sample, 1)}
    deps: dict[str, Any] = {}
    out: dict[str, Any] = {"started": time.strftime("%F %T"), "variants": list(variants)}
    try:
        for label, (mon, _) in variants.items():
            deps[label] = jd.deploy(model, name=f"cpu-{label}", sample=sample, progress=False,
                                    monitoring=mon, min_replicas=1, max_replicas=1)  # fmt: skip
        settings = Settings.from_env()
        info = read_state(settings)
        assert info is not None and info.pid
        for d in deps.values():  # warm-up (it also starts the payload log actor)
            run_wrk(f"{d.url}/predict", bodies[1], 32, 1.0, d.token)
        rows = []
        for rnd in range(a.rounds):
            order = list(deps)[rnd % len(deps) :] + list(deps)[: rnd % len(deps)]
            for label in order:
                d = deps[label]
                url = f"{d.url}/predict"
                procs = cluster_processes(info.pid, str(runtime_dir(settings)))
                res, spent = measured(procs, f"cpu-{label}",
                                      lambda: run_wrk(url, bodies[1], 32, a.seconds, d.token))  # noqa: B023  # fmt: skip
                p50 = run_wrk(url, bodies[1], 1, a.seconds / 2, d.token).p50_ms
                per_req = {k: v / max(res.requests, 1) * 1e6 for k, v in spent.items()}
                rows.append({"round": rnd, "variant": label, "rps": res.rps, "p50_c1_ms": p50,
                             "errors": res.errors, "cpu_us_per_request": per_req,
                             "load_average": os.getloadavg()[0]})  # fmt: skip
                print(f"r{rnd} {label:13} {res.rps:6.0f} req/s c=32, p50 c=1 {p50:5.2f} ms, "
                      f"{sum(per_req.values()):6.0f} us CPU/req "
                      f"(replica {per_req.get('replica', 0):.0f}, haproxy "
                      f"{per_req.get('haproxy', 0):.0f}), load {os.getloadavg()[0]:.1f}",
                      flush=True)  # fmt: skip
        out["rows"] = rows
        out["summary"] = _summary(rows, list(variants))
        if a.idle:
            out["pauses"] = _after_pauses(deps["mon"], a.idle)
    finally:
        for d in deps.values():
            try:
                d.delete()
            except Exception as exc:
                print(f"clean-up failed: {exc}")
        jd.stop_cluster()
        home.cleanup()
    out["load_average_at_end"] = os.getloadavg()
    emit(out, a.out, "cpu.json")


def _summary(rows: list[dict[str, Any]], labels: list[str]) -> dict[str, Any]:
    """Per variant: median req/s, p50, CPU µs per request in total and by role."""
    out: dict[str, Any] = {}
    for label in labels:
        mine = [r for r in rows if r["variant"] == label]
        roles = sorted({k for r in mine for k in r["cpu_us_per_request"]})
        by_role = {k: statistics.median(r["cpu_us_per_request"].get(k, 0.0) for r in mine)
                   for k in roles}  # fmt: skip
        out[label] = {
            "rps": statistics.median(r["rps"] for r in mine),
            "p50_c1_ms": statistics.median(r["p50_c1_ms"] for r in mine),
            "cpu_us_per_request": statistics.median(
                sum(r["cpu_us_per_request"].values()) for r in mine
            ),
            "by_role": by_role,
        }
    out["paired"] = _paired(rows)
    return out


# Roles a request passes through; the others (Serve's controller and proxy actors, Ray's
# daemons, idle replicas) cost CPU per second whatever the load, divided here by requests.
REQUEST_PATH = ("replica", "haproxy", "aggregator", "payload_log")
PAIRS = (("mon", "nomon"), ("mon-inline", "mon-thread"), ("nomon-inline", "nomon-thread"))


def _paired(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Ratios of two variants within each round (median, min, max over rounds)."""

    def path(r: dict[str, Any]) -> float:
        return sum(r["cpu_us_per_request"].get(k, 0.0) for k in REQUEST_PATH)

    figures = {"request-path CPU/req": path, "p50 c=1": lambda r: r["p50_c1_ms"],
               "req/s c=32": lambda r: r["rps"]}  # fmt: skip
    out: dict[str, Any] = {}
    for a, b in PAIRS:
        by_round = {r["round"]: {} for r in rows}
        for r in rows:
            by_round[r["round"]][r["variant"]] = r
        pairs = [(x[a], x[b]) for x in by_round.values() if a in x and b in x]
        if not pairs:
            continue
        for name, fig in figures.items():
            ratios = sorted(fig(x) / fig(y) for x, y in pairs)
            out[f"{name}: {a} / {b}"] = {"median": statistics.median(ratios),
                                         "per_round": ratios}  # fmt: skip
    return out


def _after_pauses(dep: Any, idle_s: float, repeats: int = 3) -> list[dict[str, Any]]:
    """First request after a pause of 2 s and of ``idle_s``, alternated, against the next 20.

    Each request on a new connection through HAProxy, as a client that comes back does;
    connect and answer are timed apart. If an idle minute made something cold that a short
    pause does not, the long pause's first answer is the slower one.
    """
    from urllib.parse import urlsplit

    url = urlsplit(f"{dep.url}/predict")
    body = records_body(fit("iris")[1], 1)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {dep.token}"}

    def once() -> tuple[float, float]:
        conn = http.client.HTTPConnection(url.hostname or "", url.port)
        t0 = time.perf_counter()
        conn.connect()
        t1 = time.perf_counter()
        conn.request("POST", url.path, body, headers)
        status = conn.getresponse().status
        t2 = time.perf_counter()
        conn.close()
        assert status == 200, status
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3

    out = []
    for _ in range(repeats):
        for pause in (2.0, idle_s):
            time.sleep(pause)
            first = once()
            steady = [once() for _ in range(20)]
            row = {"pause_s": pause, "first_connect_ms": first[0], "first_answer_ms": first[1],
                   "next20_connect_ms": statistics.median(s[0] for s in steady),
                   "next20_answer_ms": statistics.median(s[1] for s in steady),
                   "load_average": os.getloadavg()[0]}  # fmt: skip
            print(row, flush=True)
            out.append(row)
    return out


if __name__ == "__main__":
    main()
