"""Ours against what a data scientist would pick instead, side by side on the same cores.

``python bench/peers.py [--smoke] [--mlserver] [--rounds 3] [--seconds 2] [--out DIR]
[--models forest] [--idle 65 [--idle-repeats 2]]``

Servers, each given both cores: ours (2 replicas, auth and monitoring on, HAProxy
ingress, on a cluster of its own: ports 6900/8900 unless ``JD_RAY_PORT``/``JD_HTTP_PORT``
say otherwise, a fresh home, stopped at the end), ``bentoml serve`` of the
very Bento ours built with 1 and with 2 workers, the ten-line FastAPI app under
``uvicorn --workers 2`` (``peer_apps.py``), the bare ASGI floor (2 workers, no model), and
with ``--mlserver`` MLServer 1.7's scikit-learn runtime (2 workers; a venv of its own is
created under ``--out`` on first use, which takes minutes, hence opt-in). Models: the iris
``StandardScaler + LogisticRegression`` pipeline and a 200-tree forest, both fit on a
DataFrame, records in the body (``peer_models.py``). Every server's answers are checked
against ``model.predict`` before any load. Ours with monitoring off is measured beside it
for the monitoring on/off figure. Each round runs every server once per configuration,
in an order rotated per round; figures are paired ratios within a round.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ours
import peer_mlserver
from bento_ref import BentoServer, stop_group
from isolated import own_cluster
from loadgen import post_json, require_wrk, run_wrk
from peer_models import MODELS, expected, fit, records, records_body
from peer_report import write_report
from plan import log

BASE_PORT = int(os.environ.get("JD_BENCH_PEER_PORT", "8300"))
# (rows per request, connections): p50 at c=1 for 1 and 32 rows, throughput at c=32.
CONFIGS = ((1, 1), (32, 1), (1, 32))


@dataclass
class Peer:
    """One server of one model: where to send what, and how to read its answer."""

    label: str
    model: str
    url: str
    token: str | None = None
    body: Any = records_body  # (sample, rows) -> str
    read: Any = field(default=lambda a: [int(v) for v in a["predictions"]])


class Uvicorn:
    """``uvicorn --workers 2`` of an app in peer_apps.py."""

    def __init__(self, app: str, port: int, env: dict[str, str], log_path: Path) -> None:
        cmd = [sys.executable, "-m", "uvicorn", f"peer_apps:{app}", "--app-dir",
               str(Path(__file__).parent), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "2", "--no-access-log", "--log-level", "warning"]  # fmt: skip
        self.port = port
        self.proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=log_path.open("w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def stop(self) -> None:
        stop_group(self.proc)


def _check(peer: Peer, sample: Any) -> None:
    """Refuse to measure a server that answers wrongly (or not at all)."""
    for rows in (1, 32):
        deadline = time.monotonic() + 60
        while True:
            try:
                resp = post_json(peer.url, peer.body(sample, rows), peer.token)
                if resp.status_code == 200:
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{peer.label} ({peer.model}) never answered 200")
            time.sleep(0.3)
        if peer.read is None:
            continue
        got, want = peer.read(resp.json()), expected(peer.model, rows)
        if got != want:
            raise RuntimeError(f"{peer.label} ({peer.model}) answered {got[:5]}, not {want[:5]}")


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="1 round of 1 s runs, no warm-up")
    p.add_argument("--mlserver", action="store_true", help="add MLServer (creates its venv)")
    p.add_argument("--rounds", type=int)
    p.add_argument("--seconds", type=float)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "peers")
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--idle", type=float, default=0.0,
                   help="then leave every server idle this long (s), time ours', FastAPI's and the "
                   "floor's next requests")  # fmt: skip
    p.add_argument("--idle-repeats", type=int, default=1, help="idle pauses (order alternates)")
    return p.parse_args()


def main() -> None:
    a = _args()
    require_wrk()
    rounds, seconds = a.rounds or (1 if a.smoke else 3), a.seconds or (1.0 if a.smoke else 2.0)
    a.out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    home = own_cluster("peers", 6900, 8900, "36000-36499")
    api, why = ours.load_api()
    if api is None:
        raise SystemExit(why)
    stoppers: list[Any] = []
    deployed: list[Any] = []
    peers: list[Peer] = []
    extra: dict[str, Any] = {}
    try:
        port = BASE_PORT
        for model_name in a.models:
            model, sample = fit(model_name)
            probe = records_body(sample, 1)
            for mon in (True, False) if model_name == "iris" else (True,):
                label = "ours" if mon else "ours_nomon"
                d = ours.deploy(api, model, f"peer-{model_name}{'' if mon else '-nomon'}",
                                sample, probe, min_replicas=2, max_replicas=2,
                                monitoring=mon)  # fmt: skip
                deployed.append(d)
                peers.append(Peer(label, model_name, f"{d.handle.url}/predict", d.handle.token))
            tag = deployed[-1 if model_name == "forest" else -2].handle.bento_tag  # mon on
            service = _service_name(tag)
            for workers in (1, 2):
                b = BentoServer(tag, None, port, a.out / f"bentoml-{model_name}-{workers}.log",
                                config_overrides={"services": {service: {"workers": workers}}},
                                )  # fmt: skip
                b.start()
                stoppers.append(b)
                peers.append(Peer(f"bentoml_{workers}w", model_name, b.url))
                port += 1
            pickled = a.out / f"{model_name}.pkl"
            import pickle

            pickled.write_bytes(pickle.dumps(model))
            fa = Uvicorn("fastapi_app", port, {"PEER_MODEL": str(pickled)},
                         a.out / f"fastapi-{model_name}.log")  # fmt: skip
            stoppers.append(fa)
            peers.append(Peer("fastapi_2w", model_name, f"http://127.0.0.1:{port}/predict"))
            port += 1
            if a.mlserver:
                python = peer_mlserver.ensure_venv(a.out, log)
                ml = peer_mlserver.MLServer(python, a.out, f"peer-{model_name}", model, port)
                ml.start()
                stoppers.append(ml)
                peers.append(Peer("mlserver_2w", model_name, ml.url,
                                  body=lambda s, n: peer_mlserver.v2_body(records(s, n)),
                                  read=peer_mlserver.predictions))  # fmt: skip
                port += 1
        if not a.mlserver:
            extra["mlserver"] = "left out: pass --mlserver (its venv takes minutes to create)"
            log(extra["mlserver"])
        bare = Uvicorn("bare", port, {}, a.out / "bare.log")
        stoppers.append(bare)
        # The floor has no model: it must only answer 200.
        peers.append(Peer("bare_asgi_2w", "iris", f"http://127.0.0.1:{port}/predict", read=None))
        for peer in peers:
            _check(peer, fit(peer.model)[1])
        log(f"{len(peers)} servers answer correctly; load rounds")
        load = _rounds(peers, rounds, seconds, warmup=not a.smoke)
        if a.idle:
            # The bare floor too: what any Python server pays after a pause, doing nothing.
            first = a.models[0]
            probed = [p for p in peers if p.label == "bare_asgi_2w"
                      or (p.model == first and p.label in ("ours", "fastapi_2w"))]  # fmt: skip
            wake = next((p for p in peers if p.label == "bentoml_2w"), None)
            extra["after_idle"] = [_after_idle(probed[:: 1 if i % 2 == 0 else -1], a.idle, wake)
                                   for i in range(a.idle_repeats)]  # fmt: skip
            log(f"after {a.idle:.0f} s idle: {extra['after_idle']}")
    finally:
        for s in stoppers:
            _quietly(s.stop)
        for d in deployed:
            _quietly(d.handle.delete)
        _quietly(api.stop_cluster)
        home.cleanup()
    meta = {"rounds": rounds, "seconds": seconds, "wall_s": time.monotonic() - began,
            "load_average_at_end": os.getloadavg(), "started": time.strftime("%F %T")}  # fmt: skip
    md = write_report(a.out, load, {**extra, **meta})
    print(md)


def _rounds(peers: list[Peer], rounds: int, seconds: float, warmup: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rnd in range(rounds):
        shift = rnd % len(peers)
        for peer in peers[shift:] + peers[:shift]:
            sample = fit(peer.model)[1]
            for rows, conns in CONFIGS:
                if peer.label.startswith("bare") and rows != 1:
                    continue  # the floor does not read the rows
                if peer.label == "ours_nomon" and conns != 32:
                    continue  # only the monitoring on/off throughput figure needs it
                body = peer.body(sample, rows)
                if warmup and rnd == 0:
                    run_wrk(peer.url, body, conns, 1, peer.token)
                res = run_wrk(peer.url, body, conns, seconds, peer.token)
                out.append({"round": rnd, "server": peer.label, "model": peer.model,
                            "rows": rows, "conns": conns, **res.to_dict()})  # fmt: skip
                log(f"r{rnd} {peer.model:6} {peer.label:13} rows={rows:2} c={conns:2} "
                    f"{res.rps:7.0f} req/s p50 {res.p50_ms:6.2f} ms err {res.errors}")  # fmt: skip
    return out


def _after_idle(pair: list[Peer], idle_s: float, wake: Peer | None) -> dict[str, Any]:
    """Milliseconds of each server's first request after ``idle_s`` idle, against its next
    20, for ours, FastAPI and the bare floor after the same pause (first requests in
    ``pair``'s order).

    Each request on a new connection, as a client that comes back after a pause does. The
    client and the machine wake up too: whichever server came first paid for that (the
    bare floor, which does nothing, took 2.5-2.7x its steady time when first, 1.4-1.8x
    when last). So one request to ``wake``, a server not measured, goes first.
    """
    import http.client
    from urllib.parse import urlsplit

    def once(peer: Peer) -> float:
        url = urlsplit(peer.url)
        headers = {"Content-Type": "application/json"}
        if peer.token:
            headers["Authorization"] = f"Bearer {peer.token}"
        body = peer.body(fit(peer.model)[1], 1)
        # http.client, not httpx: a new httpx client costs ~40 ms (its SSL context).
        conn = http.client.HTTPConnection(url.hostname or "", url.port)
        t = time.perf_counter()
        conn.request("POST", url.path, body, headers)
        assert conn.getresponse().status == 200
        elapsed = (time.perf_counter() - t) * 1e3
        conn.close()
        return elapsed

    time.sleep(idle_s)
    woke = once(wake) if wake is not None else None
    first = {p.label: once(p) for p in pair}
    out: dict[str, Any] = {"idle_s": idle_s, "order": [p.label for p in pair],
                           "model": pair[0].model if pair[0].read else pair[-1].model,
                           "wake": wake and {"server": wake.label, "ms": woke}}  # fmt: skip
    for p in pair:
        steady = sorted(once(p) for _ in range(20))
        out[p.label] = {"first_ms": first[p.label], "steady_median_ms": steady[10]}
    return out


def _service_name(tag: str) -> str:
    """The BentoML service name inside the Bento ``tag`` (its ``jd_bento.json``)."""
    home = Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml")
    name, version = tag.split(":")
    config = home / "bentos" / name / version / "src" / "jd_bento.json"
    return str(json.loads(config.read_text())["service_name"])


def _quietly(fn: Any) -> None:
    try:
        fn()
    except Exception as exc:
        log(f"clean-up failed: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
