"""Make Ray Serve match the durable desired state: the restore after a restart.

Serve's applications, the replicas' loaded versions and the aggregator's counters are
caches of the store (:mod:`jupyter_deploy.control.store`). After a clean stop, a crash of
the head, a reboot, or on connecting to a cluster whose applications are gone, this puts
every deployment back at its live version, on its route, with its keys (its replicas get
the stored hashes) and its saved counters. A deployment whose application serves
another version than the store's live one (a rollout interrupted between its two steps)
is put back at the live version too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .. import _ray
from ..control.records import DeploymentRecord, ServeTarget
from . import controller
from .readiness import probe, wait_until_serving
from .serving import submit
from .target import Target, live_target


@dataclass(frozen=True)
class Restored:
    """One deployment brought back: which version, and why it needed it."""

    name: str
    version: int
    reason: str  # "missing" (no application) or "drifted" (it served another version)


def _needs(rec: DeploymentRecord) -> str | None:
    assert rec.live is not None
    details = _ray.app_details(rec.name)
    if details.status in ("NOT_STARTED", "DELETING") or details.user_config is None:
        return "missing"
    if ServeTarget.from_config(details.user_config).key() != live_target(rec).serve_target().key():
        return "drifted"
    return None


def reconcile(
    registry: object,
    base_url: str,
    timeout: float,
    tick: Callable[[str], None] = lambda _m: None,
) -> list[Restored]:
    """Submit every live deployment Serve lacks (or serves wrongly); wait until they answer."""
    _ray.call(registry.restore_counters)  # type: ignore[attr-defined]  # before replicas push
    todo: list[tuple[Target, Restored]] = []
    records = _ray.call(registry.records)  # type: ignore[attr-defined]
    for rec in records:
        if rec.live is None:
            continue
        reason = _needs(rec)
        if reason is None:
            continue
        target = live_target(rec)
        submit(target, target.spec.autoscaling)
        todo.append((target, Restored(rec.name, rec.live, reason)))
    submitted = time.time()
    for target, restored in todo:  # they start together; waiting in turn costs nothing more
        version = probe(f"{base_url}/{target.spec.name}", target.spec.name)
        wait_until_serving(target, submitted, version, timeout, tick, fresh=False)
        _ray.call(registry.record_event, restored.name, "restore", restored.version,  # type: ignore[attr-defined]
                  restored.reason)  # fmt: skip
    if any(r.canary is not None and r.canary.state == "running" for r in records):
        controller.handle(base_url, timeout)  # the canaries carry on from the store
    return [restored for _, restored in todo]
