"""Phase A: the bench's own Ray head with the minimal app, against bentoml serve.

Also times the Ray side of the lifecycle (head start, first deploy, warm deploys, redeploy
under load) so that ours' lifecycle figures have a reference from the same run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bento_ref import BentoServer, build_reference_bento
from cluster import SERVE_PORT, BenchCluster
from loadgen import finish_wrk, start_wrk
from model import BenchModel
from plan import Plan, log
from report import Figure, LoadRow
from rounds import load_rounds, server_figures
from servers import (
    Endpoint,
    delete_minimal_ray,
    deploy_minimal_ray,
    memory_mb,
    replica_pids,
)


def phase_a(
    plan: Plan,
    model: BenchModel,
    paths: dict[str, Path],
    load: list[LoadRow],
    figures: list[Figure],
    extra: dict[str, Any],
) -> None:
    """Bench Ray cluster (HAProxy) with the minimal app, against bentoml serve."""
    probe = model.body(1)
    cluster = BenchCluster(plan.out / "ray_cluster", haproxy=plan.haproxy)
    bento: BentoServer | None = None
    life: dict[str, Any] = {}
    try:
        log("phase A: starting the bench Ray head")
        life["ray_start_s"] = cluster.start()
        first = deploy_minimal_ray(cluster, paths["m1"], "raw", probe)
        life["first_deploy"] = first.to_dict()
        warm = []
        for i in range(plan.deploy_rounds):
            timing = deploy_minimal_ray(cluster, paths["m1"], f"raw-warm{i}", probe)
            warm.append(timing.first_ok_s)
            delete_minimal_ray(cluster, f"raw-warm{i}")
        life["warm_first_ok_s"] = warm
        life["raw_replica_memory"] = memory_mb(replica_pids("raw"))
        log("phase A: redeploy of the minimal app under load")
        life["redeploy"] = _redeploy_minimal(plan, cluster, model, paths)
        endpoints = [Endpoint("ray", f"http://127.0.0.1:{SERVE_PORT}/raw/predict")]
        if plan.ray_batch:
            deploy_minimal_ray(cluster, paths["m1"], "rawbatch", probe, batch=True)
            endpoints.append(
                Endpoint("ray_batch", f"http://127.0.0.1:{SERVE_PORT}/rawbatch/predict")
            )
        tag, home, build_s = build_reference_bento(model.estimator, plan.out / "bento_ref")
        life["reference_bento_build_s"] = build_s
        bento = BentoServer(tag, home, log_path=plan.out / "bentoml-serve-A.log")
        life["bentoml_ready_s"] = bento.start()
        life["bentoml_memory"] = memory_mb(bento.worker_pids())
        endpoints.insert(0, Endpoint("bentoml", bento.url))
        load_rounds(plan, "A", endpoints, model, load)
    finally:
        if bento is not None:
            bento.stop()
        cluster.stop()
    extra["ray_lifecycle"] = life
    phase_load = [r for r in load if r.phase == "A"]
    for server in [s for s in ("ray", "ray_batch") if any(r.server == s for r in phase_load)]:
        figures.extend(server_figures(phase_load, server, targets=False))


def _redeploy_minimal(
    plan: Plan, cluster: BenchCluster, model: BenchModel, paths: dict[str, Path]
) -> dict[str, Any]:
    """Roll the variant out over the running minimal app while wrk sends traffic (c=4)."""
    expect = int(paths["m2_probe_answer"].read_text())
    url = f"http://127.0.0.1:{SERVE_PORT}/raw/predict"
    started: list[tuple[Any, Path]] = []

    def start_load() -> None:
        # Starts when the driver calls serve.run, so the window covers the rollout proper.
        started.append(start_wrk(url, model.body(1), 4, 600))

    timing = deploy_minimal_ray(
        cluster, paths["m2"], "raw", model.probe_body(), expect, on_serve_run=start_load
    )
    if not started:
        raise RuntimeError("the redeploy driver never reached serve.run")
    # The driver returns only after the old replica drained, so the window has covered
    # the whole rollout by now.
    res = finish_wrk(*started[0], stop=True)
    # Put the first version back so the load rounds measure the same model everywhere.
    deploy_minimal_ray(cluster, paths["m1"], "raw", model.body(1))
    return {
        "timing": timing.to_dict(),
        "failed_requests": res.errors,
        "requests": res.requests,
        "max_ms": res.max_ms,
    }
