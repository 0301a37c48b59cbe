"""The public Python API. Every front door (magics, CLI, panel, notebooks) calls these."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

from . import aggregator, cluster, serving
from .capture import capture, resolve
from .deployment import Deployment
from .errors import (
    DeploymentFailedError,
    DeploymentNotFoundError,
    DeploymentTimeoutError,
    RollbackError,
)
from .progress import Progress
from .registry import DeploymentRecord
from .settings import Settings
from .spec import Autoscaling, DeploymentSpec, Resources, name_from_variable


def _registry() -> Any:
    from .registry import handle

    return handle()


def _call(method: Any, *args: Any) -> Any:
    import ray

    return ray.get(method.remote(*args))


def _base_url(info: cluster.ClusterInfo, settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if info.http_host in ("0.0.0.0", "") else info.http_host
    return f"http://{host}:{info.http_port}"


def _probe(url: str, token: str | None) -> Any:
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


def _handle(record: dict[str, Any], settings: Settings) -> Deployment:
    info = cluster.current()
    assert info is not None
    rec = DeploymentRecord.from_dict(record)
    return Deployment(rec, _base_url(info, settings), serving.application_status(rec.name))


def deploy(
    model: Any,
    name: str | None = None,
    *,
    sample: Any = None,
    min_replicas: int = 1,
    max_replicas: int = 2,
    target_ongoing_requests: float = 8.0,
    num_cpus: float = 0.5,
    num_gpus: float = 0.0,
    resources: dict[str, float] | None = None,
    auth: bool = True,
    allow_nan: bool = False,
    max_batch_rows: int = 10_000,
    monitoring: bool = True,
    reference: Any = None,
    log_sample_rate: float = 1.0,
    drift: dict[str, float] | None = None,
    address: str | None = None,
    namespace: dict[str, Any] | None = None,
    progress: bool = True,
    timeout: float | None = None,
) -> Deployment:
    """Package ``model`` as a Bento and serve it on Ray Serve at ``/<name>``.

    Parameters
    ----------
    model
        A fitted estimator or any object with ``predict``; or the name of a variable in
        ``namespace`` (the magics pass the kernel's namespace).
    name
        Deployment name and route. Default: the variable name, else the class name.
        Deploying an existing name rolls out a new version with no failed requests.
    sample
        Training data (DataFrame or 2-D array) to infer the input schema from.
    min_replicas, max_replicas, target_ongoing_requests
        Ray Serve autoscaling range and the per-replica load it scales on.
    num_cpus, num_gpus, resources
        Per-replica Ray resources (``resources`` for custom node resources).
    auth
        Require ``Authorization: Bearer <token>`` on every route (default True).
    allow_nan
        Accept missing values in every column (default: only where the sample had some).
    monitoring
        Count every request in the replicas for :meth:`Deployment.metrics`, profile the
        inputs for drift, and keep the payload log (default True).
    reference
        Data (DataFrame or 2-D array) whose profile drift is measured against; default
        ``sample``. Without either, drift is unavailable.
    log_sample_rate
        Share of requests written to the payload log, 0 to 1 (default 1: all of them).
    drift
        Drift thresholds: ``{"psi": 0.2, "p_value": 0.01, "min_count": 30}`` (defaults).
    address
        Ray cluster address; default ``RAY_ADDRESS``, else the embedded local cluster.
    timeout
        Seconds to wait for the new version to serve (default ``JD_DEPLOY_TIMEOUT``).

    Returns
    -------
    Deployment
        The live deployment's handle (``url``, ``token``, ``predict``, ``rollback``...).
    """
    settings = Settings.from_env()
    obj, variable = resolve(model, namespace)
    if name is None:
        name = name_from_variable(variable or type(obj).__name__)
    spec = DeploymentSpec(
        name=name,
        autoscaling=Autoscaling(min_replicas, max_replicas, target_ongoing_requests),
        resources=Resources(num_cpus, num_gpus, dict(resources or {})),
        auth=auth,
        max_batch_rows=max_batch_rows,
        monitoring=monitoring,
        log_sample_rate=log_sample_rate,
        drift=dict(drift or {}),
    )
    notebook = (namespace or {}).get("__session__")
    prog = Progress(f"deploy {name}", enabled=progress)
    with prog.step("capture"):
        cap = capture(obj, sample=sample, reference=reference, allow_nan=allow_nan,
                      variable=variable, notebook=notebook)  # fmt: skip
    from .packaging import build_bento, export_archive, model_metadata

    with prog.step("package"):
        bento = build_bento(cap, spec)
    with prog.step("cluster"):
        info = cluster.connect(address, settings)
        registry = _registry()
        aggregator.handle()  # replicas look it up when they start
        if not _call(registry.has_archive, bento.tag):
            _call(registry.put_archive, bento.tag, export_archive(bento.tag))
    meta = model_metadata(cap, [])
    meta.pop("requirements")
    record = _call(registry.new_version, name, bento.tag, spec.to_dict(), meta)
    version = record["versions"][-1]["version"]
    url = f"{_base_url(info, settings)}/{name}"
    with prog.step(f"deploy v{version}"):
        _roll_out(registry, record, version, url, settings, prog, timeout)
    record = _call(registry.set_live, name, version, "deploy")
    if progress:
        prog.note(f"ready at {url}")
    return _handle(record, settings)


def _roll_out(
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
    live = _target(rec, rec.live) if rec.live is not None else None
    wait = float(timeout if timeout is not None else settings.deploy_timeout)
    try:
        serving.rollout(target, _probe(url, token), wait, prog.note, serving=live)
    except BaseException as exc:  # KeyboardInterrupt too: never leave a half-made version
        _call(registry.drop_version, rec.name, version)
        if not isinstance(exc, DeploymentFailedError | DeploymentTimeoutError):
            raise
        if rec.live is None or rec.live == version:
            with contextlib.suppress(DeploymentNotFoundError):
                serving.delete_application(rec.name)
            raise
        previous = _target(rec, rec.live)
        serving.rollout(previous, _probe(url, rec.token if previous.spec.auth else None), wait,
                        serving=target)  # fmt: skip
        raise type(exc)(f"{exc} Version {previous.version} keeps serving.") from None


def _target(rec: DeploymentRecord, version: int) -> serving.Target:
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


def get(name: str, *, address: str | None = None) -> Deployment:
    """The deployment ``name`` from the cluster (made by any kernel)."""
    _, record, settings = _record(name, address)
    return _handle(record, settings)


def list_deployments(*, address: str | None = None) -> list[Deployment]:
    """Every live deployment in the cluster, sorted by name."""
    settings = Settings.from_env()
    cluster.connect(address, settings)
    records = _call(_registry().list)
    return [_handle(r, settings) for r in sorted(records, key=lambda r: r["name"]) if r["live"]]


def rollback(name: str, *, address: str | None = None, progress: bool = True) -> Deployment:
    """Serve the version that was live before the current one (as a new rollout)."""
    registry, record, settings = _record(name, address)
    rec = DeploymentRecord.from_dict(record)
    earlier = [v for v in rec.versions if v.version < (rec.live or 0)]
    if not earlier:
        raise RollbackError(f"'{name}' has no version before v{rec.live} to roll back to.")
    previous = earlier[-1]
    info = cluster.current()
    assert info is not None
    url = f"{_base_url(info, settings)}/{name}"
    prog = Progress(f"rollback {name} to v{previous.version}", enabled=progress)
    with prog.step(f"deploy v{previous.version}"):
        target = _target(rec, previous.version)
        serving.rollout(target, _probe(url, rec.token if target.spec.auth else None),
                        float(settings.deploy_timeout), prog.note,
                        serving=_target(rec, rec.live))  # type: ignore[arg-type]  # fmt: skip
    return _handle(_call(registry.set_live, name, previous.version, "rollback"), settings)


def scale(
    name: str, min_replicas: int, max_replicas: int, *, address: str | None = None
) -> Deployment:
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
    return get(name, address=address)


def undeploy(name: str, *, address: str | None = None) -> None:
    """Stop serving ``name`` and forget its versions (its Bentos stay in the store)."""
    registry, _, _ = _record(name, address)
    with contextlib.suppress(DeploymentNotFoundError):
        serving.delete_application(name)
    _call(registry.delete, name)
    _call(aggregator.handle().forget, name)


def start_cluster() -> cluster.ClusterInfo:
    """Start (or reuse) the embedded local Ray cluster and Ray Serve on it."""
    return cluster.connect(None, Settings.from_env())


def stop_cluster() -> bool:
    """Stop the embedded cluster and every deployment on it. False if none was running."""
    return cluster.stop_embedded(Settings.from_env())
