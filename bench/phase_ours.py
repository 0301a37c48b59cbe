"""Phase B: ours through the public API, against bentoml serve of ours' own Bento.

Skipped, with the reason in the report, when ``import jupyter_deploy`` fails.
"""

from __future__ import annotations

from typing import Any

import ours
from bento_ref import BentoServer
from loadgen import run_wrk
from model import BenchModel
from plan import Plan, log
from report import Figure, LoadRow, Spread, paired_ratio
from rounds import load_rounds, server_figures
from servers import Endpoint, memory_mb, replica_pids


def phase_b(
    plan: Plan,
    model: BenchModel,
    variant: Any,
    load: list[LoadRow],
    figures: list[Figure],
    extra: dict[str, Any],
) -> None:
    """Ours through the public API, against bentoml serve of ours' own Bento."""
    api, why = (None, "--skip-ours given") if plan.skip_ours else ours.load_api()
    life: dict[str, Any] = {"import": ours.import_cost(3 if plan.smoke else 7)}
    extra["ours_lifecycle"] = life
    imp = life["import"]
    figures.append(
        Figure(
            "import jupyter_deploy",
            Spread.of([imp["import_s"]]),
            f"import csv {imp['reference_import_csv_s']:.4f} s",
            unit="s",
            target=("<=", 0.2),
            note=f"heavy modules loaded: {imp['heavy_modules_loaded'] or 'none'}",
        )
    )
    if api is None:
        log(f"phase B skipped: {why}")
        figures.append(Figure("ours", None, "", note=f"skipped: {why}"))
        return
    probe, sample = model.body(1), model.features
    name = "bench-iris"
    bento: BentoServer | None = None
    deployed: list[str] = []
    try:
        if plan.cold:
            log("phase B: cold deploy (stopping the project's cluster first)")
            first = ours.cold_deploy(api, model.estimator, name, sample, probe)
        else:
            first = ours.deploy(api, model.estimator, name, sample, probe)
        deployed.append(name)
        life["first_deploy"] = {
            "call_s": first.call_s,
            "first_ok_s": first.first_ok_s,
            "cold": plan.cold,
            "bento_tag": first.handle.bento_tag,
        }
        warm = []
        for i in range(plan.deploy_rounds):
            d = ours.deploy(api, model.estimator, f"{name}-warm{i}", sample, probe)
            warm.append(d.first_ok_s)
            d.handle.delete()
        life["warm_first_ok_s"] = warm
        life["replica_memory"] = memory_mb(replica_pids(name))
        log("phase B: redeploy under load")
        expect = int(variant.predict([model.probe_row])[0])
        life["redeploy"] = ours.redeploy_under_load(
            api, first, variant, sample, model.probe_body(), expect, probe
        )
        # Back to the first version, so every row serves the same model.
        current = ours.deploy(api, model.estimator, name, sample, probe)
        bento = BentoServer(
            current.handle.bento_tag, None, log_path=plan.out / "bentoml-serve-B.log"
        )
        life["bentoml_ready_s"] = bento.start()
        load_rounds(plan, "B", [Endpoint("bentoml", bento.url), current.endpoint()], model, load)
        bento.stop()
        bento = None
        life["monitoring"] = _monitoring(plan, api, model, load)
        log("phase B: autoscaling step")
        life["autoscaling"] = ours.autoscaling_step(
            current.endpoint(), probe, name, plan.autoscale_seconds
        )
    finally:
        if bento is not None:
            bento.stop()
        for n in deployed:
            _quietly(lambda n=n: api.get(n).delete() if hasattr(api, "get") else None)
    figures.extend(server_figures([r for r in load if r.phase == "B"], "ours", targets=True))
    _lifecycle_figures(figures, life, extra.get("ray_lifecycle", {}), plan)


def _monitoring(plan: Plan, api: Any, model: BenchModel, load: list[LoadRow]) -> dict[str, Any]:
    """Throughput with monitoring on over off, if ``deploy`` has a ``monitoring`` option."""
    if not ours.accepts(api, "monitoring"):
        return {"skipped": "deploy() has no `monitoring` option yet"}
    eps = []
    for flag in (False, True):
        d = ours.deploy(
            api,
            model.estimator,
            f"bench-mon-{int(flag)}",
            model.features,
            model.body(1),
            monitoring=flag,
        )
        eps.append(d)
    try:
        rows: list[LoadRow] = []
        for rnd in range(plan.rounds):
            for d in eps if rnd % 2 == 0 else eps[::-1]:
                res = run_wrk(
                    f"{d.handle.url}/predict", model.body(1), 32, plan.seconds, d.handle.token
                )
                rows.append(LoadRow("M", rnd, d.name, 1, 32, res.to_dict()))
        load.extend(rows)
        ratio = paired_ratio(rows, "rps", "bench-mon-1", "bench-mon-0", 1, 32)
        return {"ratio": ratio}
    finally:
        for d in eps:
            _quietly(d.handle.delete)


def _lifecycle_figures(
    figures: list[Figure], life: dict[str, Any], ray_life: dict[str, Any], plan: Plan
) -> None:
    """Deploy, redeploy, memory, monitoring and autoscaling figures with their references."""
    ray_warm = Spread.of(ray_life.get("warm_first_ok_s", []))
    ref = f"minimal Ray app {ray_warm.median:.2f} s" if ray_warm else "minimal Ray app n/a"
    figures.append(
        Figure(
            "warm deploy → first 200",
            Spread.of(life["warm_first_ok_s"]),
            ref,
            unit="s",
            target=("<=", 5.0),
        )
    )
    red = life["redeploy"]
    ray_red = ray_life.get("redeploy", {}).get("timing", {}).get("first_ok_s")
    figures.append(
        Figure(
            "redeploy → new version answers",
            Spread.of([red["new_version_s"]]),
            f"minimal Ray app {ray_red if ray_red is None else round(ray_red, 2)} s",
            unit="s",
            target=("<=", 5.0),
        )
    )
    figures.append(
        Figure(
            "redeploy failed requests",
            Spread.of([red["failed_requests"]]),
            f"non-2xx + socket errors; {red['requests']} answered under wrk c=4",
            unit="count",
            target=("==", 0),
        )
    )
    if plan.cold:
        figures.append(
            Figure(
                "cold deploy → first 200",
                Spread.of([life["first_deploy"]["first_ok_s"]]),
                f"bench ray start {ray_life.get('ray_start_s', 0):.1f} s",
                unit="s",
                target=("<=", 30.0),
            )
        )
    mem, ray_mem = life.get("replica_memory", {}), ray_life.get("raw_replica_memory", {})
    if mem and ray_mem:
        figures.append(
            Figure(
                "replica RSS: ours / minimal Ray",
                Spread.of([mem["rss_mb"] / ray_mem["rss_mb"]]),
                f"minimal Ray replica {ray_mem['rss_mb']:.0f} MiB",
                note=f"ours {mem['rss_mb']:.0f} MiB RSS, {mem['uss_mb']:.0f} USS",
            )
        )
    mon = life.get("monitoring", {})
    figures.append(
        Figure(
            "req/s c=32 monitoring on / off",
            mon.get("ratio"),
            "same deployment, monitoring off",
            target=(">=", 0.95),
            note=mon.get("skipped", ""),
        )
    )
    auto = life.get("autoscaling", {})
    figures.append(
        Figure(
            "autoscaling c=1→64→1 errors",
            Spread.of([auto.get("errors")]),
            f"replicas {auto.get('replicas_min')}-{auto.get('replicas_max')}",
            unit="count",
            target=("==", 0),
        )
    )


def _quietly(fn: Any) -> None:
    """Best-effort clean-up: a failed delete must not hide the figures measured."""
    try:
        fn()
    except Exception as exc:
        log(f"clean-up failed: {type(exc).__name__}: {exc}")
