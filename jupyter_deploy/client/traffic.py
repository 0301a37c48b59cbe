"""Two versions live at once: splits, shadows and promotion, as changes of desired state.

Each change is checked first (a one-line error changes nothing), then pushed to the
running replicas as a new ``user_config`` (an in-place switch: no process starts, no
request fails), and recorded in the store once every replica has applied it: a driver that
dies in between leaves the store's split, which the next connection restores.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Any

from .. import _ray
from ..control import cluster
from ..control.records import Canary, CanaryPolicy, DeploymentRecord, Traffic
from ..errors import InvalidSpecError, RollbackError
from ..progress import Progress
from ..rollout import controller
from ..rollout.change import push
from ..rollout.target import code_key, target_of
from ..settings import Settings
from . import actions

MAX_LOADED = 2  # versions one replica holds at once (each is a model in its memory)


def parse_shares(items: list[str]) -> dict[int, float]:
    """``["1=90", "2=10"]`` (percent, as the magics and the CLI take them) -> shares."""
    shares: dict[int, float] = {}
    for item in items:
        version, sep, percent = item.partition("=")
        try:
            if not sep:
                raise ValueError
            shares[int(version.lstrip("v"))] = float(percent) / 100
        except ValueError:
            raise InvalidSpecError(
                f"Write each share as VERSION=PERCENT (e.g. 1=90 2=10), not {item!r}."
            ) from None
    return shares


def _check_version(rec: DeploymentRecord, version: int) -> None:
    known = [v.version for v in rec.versions]
    if version not in known:
        raise InvalidSpecError(f"'{rec.name}' has no version {version}; versions: {known}.")
    failed = rec.version(version).meta.get("failed")
    if failed:
        raise InvalidSpecError(f"v{version} of '{rec.name}' failed its canary ({failed}); "
                               "deploy it again to try it.")  # fmt: skip
    live = target_of(rec, rec.live or version)
    if code_key(target_of(rec, version)) != code_key(live):
        raise InvalidSpecError(
            f"v{version} of '{rec.name}' has other replica settings (auth, resources, batch "
            f"limit or monitoring) than v{rec.live}: deploy it with the same settings to split."
        )


def make_traffic(
    rec: DeploymentRecord,
    weights: dict[int, float],
    sticky: str | None = None,
    shadow: int | None = None,
    shadow_rate: float = 0.0,
) -> tuple[int, Traffic | None]:
    """Check a split; return the version that becomes live and the traffic to record."""
    if not weights:
        raise InvalidSpecError("Give at least one version and its share, e.g. {1: 0.9, 2: 0.1}.")
    clean: dict[int, float] = {}
    for version, share in weights.items():
        if not isinstance(share, int | float) or not math.isfinite(share) or share < 0:
            raise InvalidSpecError(f"The share of v{version} must be a number >= 0, got {share!r}.")
        _check_version(rec, int(version))
        clean[int(version)] = float(share)
    total = sum(clean.values())
    if abs(total - 1.0) > 1e-6:
        raise InvalidSpecError(f"The shares must sum to 1, they sum to {total:g}.")
    serving_versions = sorted(v for v, w in clean.items() if w > 0)
    if shadow is not None:
        _check_version(rec, shadow)
        if shadow in serving_versions:
            raise InvalidSpecError(f"v{shadow} already takes traffic; a shadow gets only copies.")
        if not 0 < shadow_rate <= 1:
            raise InvalidSpecError(f"The shadow rate must be in (0, 1], got {shadow_rate!r}.")
    if len(serving_versions) + (shadow is not None) > MAX_LOADED:
        raise InvalidSpecError(
            f"A replica holds at most {MAX_LOADED} versions; this needs "
            f"{len(serving_versions) + (shadow is not None)}."
        )
    if sticky is not None:
        columns = [c["name"] for c in rec.version(serving_versions[0]).meta.get(
            "input_schema", {}).get("columns", [])]  # fmt: skip
        if sticky not in columns:
            raise InvalidSpecError(f"sticky={sticky!r} is not an input column; columns: {columns}.")
    live = rec.live if rec.live in serving_versions else max(serving_versions,
                                                             key=lambda v: clean[v])  # fmt: skip
    if len(serving_versions) == 1 and shadow is None:
        return live, None  # one version takes everything: no split to carry around
    weights_out = {v: clean[v] for v in serving_versions}
    return live, Traffic(weights_out, sticky, shadow, shadow_rate if shadow is not None else 0.0)


def apply(
    rec: DeploymentRecord,
    settings: Settings,
    live: int,
    traffic: Traffic | None,
    event: str,
    detail: str = "",
    progress: bool = False,
    canary: Canary | None = None,
) -> actions.View:
    """Push ``live`` + ``traffic`` to the replicas, wait until all applied, then record it
    (with ``canary``: the canary that starts with this split)."""
    prog = Progress(f"{event} {rec.name}", enabled=progress)
    with prog.step("apply"):
        push(rec, _base_url(settings), live, traffic, float(settings.deploy_timeout), prog.note)
    registry = actions.registry()
    new = _ray.call(registry.set_live, rec.name, live, event, detail or _describe(traffic),
                    traffic, canary)  # fmt: skip
    return actions.view(new, settings)


def _base_url(settings: Settings) -> str:
    info = cluster.current()
    assert info is not None  # every caller connected first (actions.record, deploy)
    return cluster.base_url(info, settings)


def start_canary(
    rec: DeploymentRecord, version: int, option: float | dict[str, Any], settings: Settings,
    prog: Progress,
) -> actions.View:  # fmt: skip
    """Give the just-recorded ``version`` its first canary share; the controller takes it on."""
    policy = CanaryPolicy.parse(option)
    if rec.live is None:
        raise InvalidSpecError(f"A canary is judged against a live version; '{rec.name}' has "
                               "none yet: deploy the first version without canary=.")  # fmt: skip
    share = policy.steps[0]
    live, split_ = make_traffic(rec, {rec.live: 1 - share, version: share},
                                rec.traffic.sticky if rec.traffic else None)  # fmt: skip
    now = time.time()
    canary = Canary(version, rec.live, policy, started=now, step_started=now)
    with prog.step(f"canary v{version} at {share:.0%}"):
        view = apply(rec, settings, live, split_, "canary start", _describe(split_), canary=canary)
    controller.handle(_base_url(settings), float(settings.deploy_timeout))
    return view


def _describe(traffic: Traffic | None) -> str:
    if traffic is None:
        return "all traffic to the live version"
    parts = [f"v{v}={w:g}" for v, w in sorted(traffic.weights.items())]
    if traffic.shadow is not None:
        parts.append(f"shadow v{traffic.shadow} at {traffic.shadow_rate:g}")
    return ", ".join(parts)


def split(name: str, weights: dict[int, float], sticky: str | None = None) -> actions.View:
    """Share ``name``'s requests between versions by weight (keeps a shadow if there is one)."""
    rec, settings = actions.record(name)
    old = rec.traffic
    live, traffic = make_traffic(rec, weights, sticky, old.shadow if old else None,
                                 old.shadow_rate if old else 0.0)  # fmt: skip
    return apply(rec, settings, live, traffic, "split")


def with_shadow(
    rec: DeploymentRecord, version: int | None, rate: float
) -> tuple[int, Traffic | None]:
    """The live split of ``rec`` with ``version`` as its shadow (None: without one)."""
    if rec.live is None:
        raise InvalidSpecError(f"A shadow mirrors the live version of '{rec.name}'; it has none.")
    weights = dict(rec.traffic.weights) if rec.traffic else {rec.live: 1.0}
    sticky = rec.traffic.sticky if rec.traffic else None
    return make_traffic(rec, weights, sticky, version, rate if version is not None else 0.0)


def shadow(name: str, version: int | None, rate: float = 1.0) -> actions.View:
    """Mirror a share ``rate`` of requests to ``version`` (None: stop mirroring)."""
    rec, settings = actions.record(name)
    live, traffic = with_shadow(rec, version, rate)
    return apply(rec, settings, live, traffic, "shadow")


def promote(name: str) -> actions.View:
    """All traffic to the newest version (ends a split, a shadow or a canary)."""
    rec, settings = actions.record(name)
    newest = rec.newest.version
    _check_version(rec, newest)
    return apply(rec, settings, newest, None, "promote")


def rollback(name: str, *, address: str | None = None, progress: bool = True) -> actions.View:
    """All traffic back to the live version when it is split or shadowed; otherwise the
    version that was live before the current one."""
    rec, settings = actions.record(name, address)
    assert rec.live is not None
    if rec.traffic is not None:
        return apply(rec, settings, rec.live, None, "rollback", progress=progress)
    earlier = [v.version for v in rec.versions
               if v.version < rec.live and not v.meta.get("failed")]  # fmt: skip
    if not earlier:
        raise RollbackError(f"'{name}' has no version before v{rec.live} to roll back to.")
    return apply(rec, settings, earlier[-1], None, "rollback", f"to v{earlier[-1]}", progress)


def describe(rec: DeploymentRecord, shadow_counts: dict[str, Any]) -> dict[str, Any]:
    """``Deployment.traffic()``: the weights, the shadow and how often it agreed."""
    assert rec.live is not None
    t = rec.traffic
    weights = dict(t.weights) if t else {rec.live: 1.0}
    out: dict[str, Any] = {"live": rec.live, "weights": weights, "sticky": t.sticky if t else None,
                           "shadow": None, "canary": _canary(rec.canary)}  # fmt: skip
    if t is not None and t.shadow is not None:
        seen = shadow_counts.get(str(t.shadow), {})
        rows = seen.get("rows", 0)
        out["shadow"] = {"version": t.shadow, "rate": t.shadow_rate,
                         "requests": seen.get("requests", 0), "failed": seen.get("failed", 0),
                         "agreement": seen.get("agree", 0) / rows if rows else None}  # fmt: skip
    return out


def _canary(canary: Canary | None) -> dict[str, Any] | None:
    """The last canary as ``traffic()`` shows it: its share, state, next decision, reason."""
    if canary is None:
        return None
    return {"version": canary.version, "baseline": canary.baseline, "state": canary.state,
            "share": canary.share, "step": canary.step, "steps": list(canary.policy.steps),
            "next_decision": canary.next_decision, "reason": canary.reason,
            "started": canary.started, "ended": canary.ended,
            "policy": asdict(canary.policy)}  # fmt: skip
