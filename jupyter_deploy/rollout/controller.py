"""The canary controller: a detached actor in the cluster that steps canaries up or back.

It runs beside the registry, not in a kernel, so a canary keeps going after the kernel
that started it exits. Its state is the store's (:class:`~jupyter_deploy.control.records.
Canary` rows): every :data:`TICK_S` it reads the running canaries, asks the aggregator for
each version's counts since the current step began, lets :func:`~.canary.judge` decide,
pushes the new split (an in-place switch, :func:`~.change.push`) and records it. A change a
person made meanwhile wins: the record is conditional, and the controller then puts back
what the store says. A new controller (after a restart) simply carries on from the store.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from .. import _ray
from ..control.records import Canary, DeploymentRecord, Traffic
from .canary import Verdict, advanced, judge
from .change import push
from .readiness import probe
from .serving import rollout
from .target import live_target, target_of

CONTROLLER_NAME = "jupyter_deploy_canary"
TICK_S = 1.0
_log = logging.getLogger(__name__)


def plan(rec: DeploymentRecord, canary: Canary, verdict: Verdict) -> tuple[int, Traffic | None]:
    """The live version and traffic that carry out ``verdict`` (a step, promotion, rollback)."""
    if verdict.action == "promote":
        return canary.version, None
    if verdict.action == "rollback":
        return canary.baseline, None
    share = canary.policy.steps[canary.step + 1]
    sticky = rec.traffic.sticky if rec.traffic else None
    return canary.baseline, Traffic({canary.baseline: 1 - share, canary.version: share}, sticky)


class CanaryController:
    """Actor body: a thread judges every running canary once a second."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self._base_url = base_url
        self._timeout = timeout
        threading.Thread(target=self._run_forever, name="jd-canary", daemon=True).start()

    def _run_forever(self) -> None:
        while True:
            time.sleep(TICK_S)
            try:
                self.tick()
            except Exception:  # a cluster hiccup must not end the controller
                _log.warning("canary tick failed", exc_info=True)

    def tick(self) -> list[str]:
        """Judge every running canary once; returns what it did, one line per deployment."""
        import ray

        from ..control.registry import handle as registry
        from ..monitoring.aggregator import handle as aggregator

        reg, agg = registry(create=False), aggregator(create=False)
        done = []
        for rec in ray.get(reg.records.remote()):
            canary = rec.canary
            if canary is None or canary.state != "running" or rec.live is None:
                continue
            counts = ray.get(agg.by_version.remote(rec.name, canary.step_started))
            now = time.time()
            verdict = judge(canary, counts, now)
            new = advanced(canary, verdict, now)
            if verdict.action == "wait":
                if new.reason != canary.reason:  # the panel shows the last reason
                    ray.get(reg.canary_step.remote(rec.name, canary.started, new))
                continue
            done.append(f"{rec.name}: {verdict.action} ({verdict.reason})")
            self._apply(reg, rec, canary, new, verdict)
        return done

    def _apply(self, reg: Any, rec: DeploymentRecord, canary: Canary, new: Canary,
               verdict: Verdict) -> None:  # fmt: skip
        import ray

        # The record as it is now: a key revoked since the tick began stays revoked, and a
        # canary a person ended meanwhile is left alone.
        rec = ray.get(reg.get.remote(rec.name))
        if rec is None or rec.canary is None or rec.canary.started != canary.started:
            return
        if rec.canary.state != "running":
            return
        live, traffic = plan(rec, canary, verdict)
        try:
            push(rec, self._base_url, live, traffic, self._timeout)
        except Exception as exc:  # the old split serves again; try at the next tick
            _log.warning("canary %s of %s could not %s: %s", canary.version, rec.name,
                         verdict.action, exc)  # fmt: skip
            return
        event = f"canary {verdict.action}"
        if ray.get(reg.canary_step.remote(rec.name, canary.started, new, live, traffic, event)):
            return
        # A person changed the traffic while this was pushed: theirs is the desired state.
        fresh = ray.get(reg.get.remote(rec.name))
        if fresh is not None and fresh.live is not None:
            target = live_target(fresh)
            rollout(target, probe(f"{self._base_url}/{rec.name}", rec.name),
                    self._timeout, serving=target_of(rec, live, traffic))  # fmt: skip


def handle(base_url: str, timeout: float) -> Any:
    """The cluster's canary controller (started on first use with the endpoints' base URL)."""
    return _ray.named_actor(CanaryController, CONTROLLER_NAME, True, base_url, timeout)
