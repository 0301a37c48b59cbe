"""What a run measures and for how long (the command line), and its progress log."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

DESCRIPTION = "Benchmark jupyter_deploy's endpoint against bentoml serve and Ray Serve."


@dataclass(frozen=True)
class Plan:
    """How long and how often to measure; ``--smoke`` shrinks everything."""

    out: Path
    rounds: int
    seconds: float
    warmup: bool
    deploy_rounds: int
    inprocess_calls: int
    autoscale_seconds: tuple[float, float, float]
    cold: bool
    ray_batch: bool
    haproxy: bool
    skip_ours: bool
    smoke: bool


def parse_args() -> Plan:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--smoke", action="store_true", help="a few seconds per figure")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--rounds", type=int, help="load rounds (default 3, smoke 1)")
    parser.add_argument("--seconds", type=float, help="seconds per load run (default 3)")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="measure ours' cold deploy: STOPS the project's cluster first",
    )
    parser.add_argument(
        "--skip-ours", action="store_true", help="measure phase A only (no jupyter_deploy)"
    )
    parser.add_argument(
        "--no-haproxy",
        action="store_true",
        help="run the bench Ray head with Serve's Python proxy instead of HAProxy",
    )
    parser.add_argument(
        "--no-ray-batch",
        action="store_true",
        help="leave out the row of the minimal Ray app with @serve.batch",
    )
    a = parser.parse_args()
    return Plan(
        out=a.out,
        rounds=a.rounds or (1 if a.smoke else 3),
        seconds=a.seconds or (1.0 if a.smoke else 3.0),
        warmup=not a.smoke,
        deploy_rounds=1 if a.smoke else 2,
        inprocess_calls=200 if a.smoke else 3000,
        autoscale_seconds=(1.0, 3.0, 1.0) if a.smoke else (3.0, 20.0, 6.0),
        cold=a.cold,
        ray_batch=not a.no_ray_batch,
        haproxy=not a.no_haproxy,
        skip_ours=a.skip_ours,
        smoke=a.smoke,
    )


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)
