"""Change what a deployment serves (its live version and split) with nothing lost on failure.

The one way every change of traffic reaches Serve, whoever makes it: a person's split,
shadow, promotion or rollback (:mod:`jupyter_deploy.client.traffic`) and the canary
controller in the cluster (:mod:`jupyter_deploy.rollout.controller`). The change is pushed
and waited for; if it fails, what the store says is pushed back, so the store, recorded
only after a change is serving, stays the truth.
"""

from __future__ import annotations

from collections.abc import Callable

from ..control.records import DeploymentRecord, Traffic
from . import serving
from .readiness import probe
from .target import live_target, target_of


def push(
    rec: DeploymentRecord,
    base_url: str,
    live: int,
    traffic: Traffic | None,
    timeout: float,
    tick: Callable[[str], None] = lambda _m: None,
) -> None:
    """Serve ``live`` with ``traffic`` (None: all to ``live``) and wait until every replica
    does; on any failure put back what ``rec`` serves now, then raise."""
    target = target_of(rec, live, traffic)
    url = f"{base_url}/{rec.name}"
    current = live_target(rec) if rec.live is not None else None
    try:
        serving.rollout(target, probe(url, rec.name), timeout, tick, serving=current)
    except BaseException:
        if current is not None:
            serving.rollout(current, probe(url, rec.name), timeout, serving=target)
        raise
