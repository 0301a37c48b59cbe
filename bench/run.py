"""Benchmark entry point: ``python bench/run.py [--smoke] [--out DIR] [--cold]``.

Two phases, each with its own reference measured under the same background load:

* Phase A (always): the bench's own Ray head with the fastest settings found, the minimal
  hand-written Ray Serve app on it, and ``bentoml serve`` of an equivalent Bento.
* Phase B (when ``import jupyter_deploy`` works): ours, deployed with the public API,
  against ``bentoml serve`` of the very Bento ours built. The bench cluster is down by
  then, so the two Ray clusters never run at once.

See README.md for what each figure means.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import require_wrk
from model import fit_models, inprocess_floor, save_pickle
from phase_ours import phase_b
from phase_ray import phase_a
from plan import log, parse_args
from report import Figure, LoadRow, Spread, write
from rounds import floor_figures


def main() -> None:
    plan = parse_args()
    require_wrk()
    plan.out.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    began = time.monotonic()
    model, variant = fit_models()
    paths = {
        "m1": save_pickle(model.estimator, plan.out / "models" / "v1.pkl"),
        "m2": save_pickle(variant, plan.out / "models" / "v2.pkl"),
        "m2_probe_answer": plan.out / "models" / "v2_probe_answer.txt",
    }
    paths["m2_probe_answer"].write_text(str(int(variant.predict([model.probe_row])[0])))
    floor = inprocess_floor(model, plan.inprocess_calls)
    log(f"in-process floor: { {k: round(v * 1e3, 4) for k, v in floor.items()} } ms")
    load: list[LoadRow] = []
    figures: list[Figure] = []
    extra: dict[str, Any] = {"inprocess_floor_s": floor}
    try:
        phase_a(plan, model, paths, load, figures, extra)
        phase_b(plan, model, variant, load, figures, extra)
    finally:
        figures.extend(floor_figures(load, floor))
        shares = [r.result["loadgen_cpu_share"] for r in load]
        figures.append(
            Figure(
                "wrk CPU share (max over runs)",
                Spread.of([max(shares, default=0)]),
                "one core = 1.0",
                unit="cores",
            )
        )
        meta = {
            "started": started,
            "mode": "smoke" if plan.smoke else "full",
            "rounds": plan.rounds,
            "ray_ingress": "haproxy" if plan.haproxy else "python proxy",
            "seconds": plan.seconds,
            "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
            "load_average_at_end": os.getloadavg(),
            "wall_s": time.monotonic() - began,
        }
        json_path, md_path = write(plan.out, figures, load, extra, meta)
        log(f"wrote {json_path} and {md_path} in {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
