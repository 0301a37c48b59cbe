"""What the API and the deployment handle do in the cluster, below both of them.

:mod:`jupyter_deploy.client.api` and :class:`~jupyter_deploy.client.deployment.Deployment`
both call these; they return records, never handles, so neither imports the other's
module in a circle.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

from ..control import cluster, tls
from ..control.registry import DeploymentRecord
from ..errors import (
    DeploymentFailedError,
    DeploymentNotFoundError,
    DeploymentTimeoutError,
    RollbackError,
)
from ..monitoring import aggregator
from ..progress import Progress
from ..rollout import serving
from ..settings import Settings
from ..spec import DeploymentSpec


def _registry() -> Any:
    from ..control.registry import handle

    return handle()


def _call(method: Any, *args: Any) -> Any:
    import ray

    return ray.get(method.remote(*args))


def base_url(info: cluster.ClusterInfo, settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if info.http_host in ("0.0.0.0", "") else info.http_host
    scheme = tls.scheme(settings) if info.embedded else "http"  # JD_TLS_*: embedded only
    return f"{scheme}://{host}:{info.http_port}"


def probe(url: str, token: str | None) -> Any:
    """A function returning the version the endpoint answers with, or None."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def probe() -> int | None:
        try:
            resp = httpx.get(f"{url}/readyz", headers=headers, timeout=2)
        except httpx.HTTPError:
            return None
        if resp.status_code != 200:
            return None
        return int(resp.headers.get("x-model-version", "0"))

    return probe


View = tuple[DeploymentRecord, str, dict[str, Any]]


def view(record: dict[str, Any], settings: Settings) -> View:
    """What a handle shows: the record, the endpoints' base URL and Serve's status."""
    info = cluster.current()
    assert info is not None
    rec = DeploymentRecord.from_dict(record)
    return rec, base_url(info, settings), serving.application_status(rec.name)


def roll_out(
    registry: Any,
    record: dict[str, Any],
    version: int,
    url: str,
    settings: Settings,
    prog: Progress,
    timeout: float | None,
) -> None:
    """Roll ``version`` out; on failure restore the previous live version (or nothing)."""
    rec = DeploymentRecord.from_dict(record)
    new = rec.version(version)
    spec = DeploymentSpec.from_dict(new.spec)
    token = rec.token if spec.auth else None
    target = serving.Target(spec, version, new.bento_tag, rec.token)
    live = target_of(rec, rec.live) if rec.live is not None else None
    wait = float(timeout if timeout is not None else settings.deploy_timeout)
    try:
        serving.rollout(target, probe(url, token), wait, prog.note, serving=live)
    except BaseException as exc:  # KeyboardInterrupt too: never leave a half-made version
        _call(registry.drop_version, rec.name, version)
        if not isinstance(exc, DeploymentFailedError | DeploymentTimeoutError):
            raise
        if rec.live is None or rec.live == version:
            with contextlib.suppress(DeploymentNotFoundError):
                serving.delete_application(rec.name)
            raise
        previous = target_of(rec, rec.live)
        serving.rollout(previous, probe(url, rec.token if previous.spec.auth else None), wait,
                        serving=target)  # fmt: skip
        raise type(exc)(f"{exc} Version {previous.version} keeps serving.") from None


def target_of(rec: DeploymentRecord, version: int) -> serving.Target:
    """What serving ``version`` of ``rec`` means: its spec, Bento and the token."""
    entry = rec.version(version)
    return serving.Target(DeploymentSpec.from_dict(entry.spec), version, entry.bento_tag,
                          rec.token)  # fmt: skip


def _record(name: str, address: str | None) -> tuple[Any, dict[str, Any], Settings]:
    settings = Settings.from_env()
    cluster.connect(address, settings)
    registry = _registry()
    record = _call(registry.get, name)
    if record is None or record["live"] is None:
        known = sorted(r["name"] for r in _call(registry.list))
        hint = f" Deployments: {', '.join(known)}." if known else " There are none."
        raise DeploymentNotFoundError(f"No deployment named '{name}' in the cluster.{hint}")
    return registry, record, settings


def lookup(name: str, *, address: str | None = None) -> View:
    """The deployment ``name`` from the cluster (made by any kernel)."""
    _, record, settings = _record(name, address)
    return view(record, settings)


def rollback(name: str, *, address: str | None = None, progress: bool = True) -> View:
    """Serve the version that was live before the current one (as a new rollout)."""
    registry, record, settings = _record(name, address)
    rec = DeploymentRecord.from_dict(record)
    earlier = [v for v in rec.versions if v.version < (rec.live or 0)]
    if not earlier:
        raise RollbackError(f"'{name}' has no version before v{rec.live} to roll back to.")
    previous = earlier[-1]
    info = cluster.current()
    assert info is not None
    url = f"{base_url(info, settings)}/{name}"
    prog = Progress(f"rollback {name} to v{previous.version}", enabled=progress)
    with prog.step(f"deploy v{previous.version}"):
        target = target_of(rec, previous.version)
        live = target_of(rec, rec.live) if rec.live is not None else None
        token = rec.token if target.spec.auth else None
        serving.rollout(target, probe(url, token), float(settings.deploy_timeout), prog.note,
                        serving=live)  # fmt: skip
    return view(_call(registry.set_live, name, previous.version, "rollback"), settings)


def scale(name: str, min_replicas: int, max_replicas: int, *, address: str | None = None) -> View:
    """Change the replica range of the live version (no replica restarts)."""
    registry, record, _ = _record(name, address)
    rec = DeploymentRecord.from_dict(record)
    live = rec.version(rec.live)  # type: ignore[arg-type]
    spec = DeploymentSpec.from_dict(live.spec)
    auto = dataclasses.replace(spec.autoscaling, min_replicas=min_replicas,
                               max_replicas=max_replicas)  # fmt: skip
    spec = dataclasses.replace(spec, autoscaling=auto)  # validates the new range
    serving.submit(serving.Target(spec, live.version, live.bento_tag, rec.token), auto)
    live.spec = spec.to_dict()
    _call(registry.update_spec, name, live.version, live.spec)
    return lookup(name, address=address)


def undeploy(name: str, *, address: str | None = None) -> None:
    """Stop serving ``name`` and forget its versions (its Bentos stay in the store)."""
    registry, _, _ = _record(name, address)
    with contextlib.suppress(DeploymentNotFoundError):
        serving.delete_application(name)
    _call(registry.delete, name)
    _call(aggregator.handle().forget, name)
