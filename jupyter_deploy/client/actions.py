"""What the API and the deployment handle do in the cluster, below both of them.

:mod:`jupyter_deploy.client.api` and :class:`~jupyter_deploy.client.deployment.Deployment`
both call these; they return records, never handles, so neither imports the other's
module in a circle. Every call connects through :func:`connect`, which restores the
desired state into Serve (and the stream consumers) the first time this process reaches
a cluster.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

from .. import _ray
from ..control import cluster
from ..control.records import DeploymentRecord
from ..errors import (
    DeploymentFailedError,
    DeploymentNotFoundError,
    DeploymentTimeoutError,
)
from ..monitoring import aggregator
from ..progress import Progress
from ..rollout import serving
from ..rollout.readiness import probe
from ..rollout.reconcile import Restored, reconcile
from ..rollout.target import live_target, target_of
from ..settings import Settings
from ..spec import DeploymentSpec
from ..stream import jobs

View = tuple[DeploymentRecord, str, dict[str, Any]]
_reconciled: set[tuple[str, float]] = set()  # clusters (address, start) this process restored


def registry() -> Any:
    from ..control.registry import handle

    return handle()


def connect(
    address: str | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> tuple[cluster.ClusterInfo, list[Restored]]:
    """Connect, and the first time (or with ``force``) make Serve match the store."""
    settings = settings or Settings.from_env()
    info = cluster.connect(address, settings)
    key = (info.address, info.started_at)
    restored: list[Restored] = []
    if force or key not in _reconciled:
        tick = progress.note if progress is not None else (lambda _m: None)
        restored = reconcile(registry(), cluster.base_url(info, settings),
                             float(settings.deploy_timeout), tick)  # fmt: skip
        for problem in jobs.restore():  # stream consumers are desired state too
            tick(problem)
        _reconciled.add(key)
    return info, restored


def url_of(name: str, settings: Settings) -> str:
    """The endpoint of deployment ``name`` on the connected cluster."""
    info = cluster.current()
    assert info is not None
    return f"{cluster.base_url(info, settings)}/{name}"


def view(rec: DeploymentRecord, settings: Settings) -> View:
    """What a handle shows: the record, the endpoints' base URL and Serve's status."""
    info = cluster.current()
    assert info is not None
    return rec, cluster.base_url(info, settings), serving.application_status(rec.name)


def roll_out(
    rec: DeploymentRecord, version: int, url: str, settings: Settings, prog: Progress,
    timeout: float | None,
) -> None:  # fmt: skip
    """Roll ``version`` out; on failure restore the previous live version (or nothing)."""
    reg = registry()
    target = target_of(rec, version)
    live = live_target(rec) if rec.live is not None else None
    wait = float(timeout if timeout is not None else settings.deploy_timeout)
    try:
        serving.rollout(target, probe(url, target.spec.name), wait, prog.note, serving=live)
    except BaseException as exc:  # KeyboardInterrupt too: never leave a half-made version
        _ray.call(reg.drop_version, rec.name, version)
        if not isinstance(exc, DeploymentFailedError | DeploymentTimeoutError):
            raise
        if live is None:
            with contextlib.suppress(DeploymentNotFoundError):
                serving.delete_application(rec.name)
            raise
        serving.rollout(live, probe(url, live.spec.name), wait, serving=target)
        raise type(exc)(f"{exc} Version {live.version} keeps serving.") from None


def record(name: str, address: str | None = None) -> tuple[DeploymentRecord, Settings]:
    """The live deployment ``name`` and the settings (one-line error if there is none)."""
    settings = Settings.from_env()
    connect(address, settings)
    rec = _ray.call(registry().get, name)
    if rec is None or rec.live is None:
        known = sorted(r.name for r in _ray.call(registry().records) if r.live is not None)
        hint = f" Deployments: {', '.join(known)}." if known else " There are none."
        raise DeploymentNotFoundError(f"No deployment named '{name}' in the cluster.{hint}")
    return rec, settings


def lookup(name: str, *, address: str | None = None) -> View:
    """The deployment ``name`` from the cluster (made by any kernel)."""
    rec, settings = record(name, address)
    return view(rec, settings)


def live_records(address: str | None = None) -> list[DeploymentRecord]:
    """Every deployment with a live version, sorted by name."""
    connect(address)
    return [r for r in _ray.call(registry().records) if r.live is not None]


def scale(name: str, min_replicas: int, max_replicas: int, *, address: str | None = None) -> View:
    """Change the replica range of the live version (no replica restarts)."""
    rec, _ = record(name, address)
    assert rec.live is not None
    live = rec.version(rec.live)
    spec = DeploymentSpec.from_dict(live.spec)
    auto = dataclasses.replace(spec.autoscaling, min_replicas=min_replicas,
                               max_replicas=max_replicas)  # fmt: skip
    spec = dataclasses.replace(spec, autoscaling=auto)  # validates the new range
    # The live target (keys, split) with the new range: a config-only change, in place.
    serving.submit(dataclasses.replace(live_target(rec), spec=spec), auto)
    _ray.call(registry().update_spec, name, live.version, spec.to_dict())
    return lookup(name, address=address)


def undeploy(name: str, *, address: str | None = None) -> None:
    """Stop serving ``name`` and forget it: versions, history, counters, archives."""
    record(name, address)
    jobs.stop_all(name)  # its consumers would score with a deployment that is gone
    with contextlib.suppress(DeploymentNotFoundError):
        serving.delete_application(name)
    _ray.call(registry().delete, name)
    _ray.call(aggregator.handle().forget, name)


def checkpoint() -> None:
    """Save the monitoring counters now (before the cluster stops)."""
    _ray.call(registry().checkpoint, timeout=30)
