"""The peer comparison's tables: medians per server, and the targets as per-round ratios."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

PEERS = ("bentoml_1w", "bentoml_2w", "fastapi_2w", "mlserver_2w")  # what users pick instead


def _value(load: list[dict[str, Any]], rnd: int, server: str, model: str, rows: int,
           conns: int, metric: str) -> float | None:  # fmt: skip
    for r in load:
        if (r["round"], r["server"], r["model"], r["rows"], r["conns"]) == (
            rnd, server, model, rows, conns,
        ):  # fmt: skip
            return float(r[metric])
    return None


def targets(load: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target of issue 13 as a ratio per round, its median, and whether it is met."""
    rounds = sorted({r["round"] for r in load})
    specs: list[tuple[str, str, int, int, str, Any, str, float]] = []
    for model in ("iris", "forest"):
        for rows in (1, 32):
            specs.append((f"p50 c=1 {rows}-row {model}: ours / fastapi_2w", model, rows, 1,
                          "p50_ms", "fastapi_2w", "<=", 1.0))  # fmt: skip
        specs.append((f"req/s c=32 1-row {model}: ours / best peer", model, 1, 32, "rps",
                      PEERS, ">=", 2.0))  # fmt: skip
    specs.append(("req/s c=32 1-row iris: ours / bare ASGI", "iris", 1, 32, "rps",
                  "bare_asgi_2w", ">=", 0.10))  # fmt: skip
    specs.append(("req/s c=32 1-row iris: monitoring on / off", "iris", 1, 32, "rps",
                  "ours_nomon", ">=", 0.95))  # fmt: skip
    out = []
    for name, model, rows, conns, metric, ref, op, goal in specs:
        per_round = []
        for rnd in rounds:
            mine = _value(load, rnd, "ours", model, rows, conns, metric)
            if isinstance(ref, tuple):
                vals = [_value(load, rnd, p, model, rows, conns, metric) for p in ref]
                refv = max((v for v in vals if v is not None), default=None)
            else:
                refv = _value(load, rnd, ref, model, rows, conns, metric)
            if mine is not None and refv:
                per_round.append(mine / refv)
        med = statistics.median(per_round) if per_round else None
        met = None if med is None else (med <= goal if op == "<=" else med >= goal)
        out.append({"figure": name, "per_round": per_round, "median": med,
                    "target": f"{op} {goal:g}", "met": met})  # fmt: skip
    return out


def write_report(out: Path, load: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """Write ``peers.json`` and ``peers.md`` into ``out``; return the Markdown."""
    figs = targets(load)
    (out / "peers.json").write_text(json.dumps({"meta": meta, "load": load, "targets": figs},
                                               indent=2))  # fmt: skip
    servers = list(dict.fromkeys(r["server"] for r in load))
    lines = ["| model | figure | " + " | ".join(servers) + " |",
             "| --- | --- |" + " --- |" * len(servers)]  # fmt: skip
    for model in ("iris", "forest"):
        for rows, conns, metric, unit in ((1, 1, "p50_ms", "ms"), (32, 1, "p50_ms", "ms"),
                                          (1, 32, "rps", "req/s")):  # fmt: skip
            cells = []
            for s in servers:
                vals = [r[metric] for r in load if (r["server"], r["model"], r["rows"],
                        r["conns"]) == (s, model, rows, conns)]  # fmt: skip
                errs = sum(r["errors"] for r in load if (r["server"], r["model"], r["rows"],
                           r["conns"]) == (s, model, rows, conns))  # fmt: skip
                cell = (
                    "—" if not vals else f"{statistics.median(vals):.{2 if unit == 'ms' else 0}f}"
                )
                cells.append(cell + (f" ({errs} err)" if errs else ""))
            what = f"p50 c=1 {rows}-row ({unit})" if conns == 1 else f"c=32 1-row ({unit})"
            lines.append(f"| {model} | {what} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| target | per round | median | target | met |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in figs:
        rounds = ", ".join(f"{v:.2f}" for v in f["per_round"])
        med = "—" if f["median"] is None else f"{f['median']:.2f}"
        met = {True: "yes", False: "**no**", None: "—"}[f["met"]]
        lines.append(f"| {f['figure']} | {rounds} | {med} | {f['target']} | {met} |")
    if "mlserver" in meta:
        lines += ["", f"MLServer: {meta['mlserver']}"]
    for idle in meta.get("after_idle", ()):  # bench/peers.py --idle
        woke = idle.get("wake")
        wake = f"woken by {woke['server']} ({woke['ms']:.2f} ms), " if woke else ""
        lines += ["", f"After {idle['idle_s']:.0f} s idle ({idle['model']}, {wake}first: "
                  f"{' then '.join(idle['order'])}): " + "; ".join(
                      f"{k} first {idle[k]['first_ms']:.2f} ms, next 20 median "
                      f"{idle[k]['steady_median_ms']:.2f} ms" for k in idle["order"])]  # fmt: skip
    md = "\n".join(lines) + "\n"
    (out / "peers.md").write_text(md)
    return md
