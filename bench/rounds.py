"""Load rounds over a set of endpoints, and the load figures made from them."""

from __future__ import annotations

from loadgen import run_wrk
from model import PAYLOAD_ROWS, BenchModel
from plan import Plan, log
from report import Figure, LoadRow, Spread, paired_ratio
from servers import Endpoint

CONCURRENCY = (1, 32)


def load_rounds(
    plan: Plan, phase: str, endpoints: list[Endpoint], model: BenchModel, out: list[LoadRow]
) -> None:
    """Every endpoint, payload and concurrency, once per round, endpoints rotated per round.

    Rotation spreads slow drifts of the shared machine over all servers evenly.
    """
    for rnd in range(plan.rounds):
        shift = rnd % len(endpoints)
        for ep in endpoints[shift:] + endpoints[:shift]:
            for rows in PAYLOAD_ROWS:
                body = model.body(rows)
                for conns in CONCURRENCY:
                    # Warm-up once per server and configuration: connections, caches
                    # and lazy initialisation; later rounds find the server warm.
                    if plan.warmup and rnd == 0:
                        run_wrk(ep.url, body, conns, 1, ep.token)
                    res = run_wrk(ep.url, body, conns, plan.seconds, ep.token)
                    out.append(LoadRow(phase, rnd, ep.label, rows, conns, res.to_dict()))
                    log(
                        f"{phase} r{rnd} {ep.label:10} rows={rows:2} c={conns:2} "
                        f"{res.rps:7.0f} req/s p50 {res.p50_ms:6.1f} ms err {res.errors}"
                    )


def server_figures(load: list[LoadRow], server: str, targets: bool) -> list[Figure]:
    """Throughput at c=32 and p50 at c=1 of ``server`` over bentoml, both payloads."""
    figs = []
    for rows in PAYLOAD_ROWS:
        tp_target = (">=", 2.0) if targets and rows == 1 else None
        p50_target = ("<=", 1.0) if targets and rows == 1 else None
        figs.append(
            Figure(
                f"req/s c=32 {rows}-row: {server} / bentoml",
                paired_ratio(load, "rps", server, "bentoml", rows, 32),
                "bentoml serve, same round",
                target=tp_target,
            )
        )
        figs.append(
            Figure(
                f"p50 c=1 {rows}-row: {server} / bentoml",
                paired_ratio(load, "p50_ms", server, "bentoml", rows, 1),
                "bentoml serve, same round",
                target=p50_target,
            )
        )
    return figs


def floor_figures(load: list[LoadRow], floor: dict[str, float]) -> list[Figure]:
    """Each server's p50 at c=1 over the in-process parse+predict+serialise time."""
    figs = []
    for server in sorted({r.server for r in load}):
        for rows in PAYLOAD_ROWS:
            base_ms = floor[f"json_predict_{rows}row_s"] * 1e3
            vals = [
                r.result["p50_ms"] / base_ms
                for r in load
                if r.server == server and r.rows == rows and r.conns == 1
            ]
            figs.append(
                Figure(
                    f"p50 c=1 {rows}-row: {server} / in-process",
                    Spread.of(vals),
                    f"in-process JSON+predict {base_ms:.3f} ms",
                )
            )
    return figs
