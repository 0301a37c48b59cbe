"""The public Python API. Every front door (magics, CLI, panel, notebooks) calls these."""

from __future__ import annotations

from typing import Any

from ..build.capture import capture, resolve
from ..control import cluster
from ..monitoring import aggregator
from ..progress import Progress
from ..settings import Settings
from ..spec import Autoscaling, DeploymentSpec, Resources, default, name_from_variable
from . import actions
from .deployment import Deployment


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
    log_retention_days: int = default("log_retention_days"),
    log_redact: tuple[str, ...] = default("log_redact"),
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
    log_retention_days
        Days of payload log kept; older days are deleted (default 30).
    log_redact
        Request fields (column names, e.g. ``["ssn"]``) removed from the payload log in
        the replica, before the record leaves it.
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
        log_retention_days=log_retention_days,
        log_redact=tuple(log_redact),
    )
    notebook = (namespace or {}).get("__session__")
    prog = Progress(f"deploy {name}", enabled=progress)
    with prog.step("capture"):
        cap = capture(obj, sample=sample, reference=reference, allow_nan=allow_nan,
                      variable=variable, notebook=notebook)  # fmt: skip
    from ..build.packaging import build_bento, export_archive, model_metadata

    with prog.step("package"):
        bento = build_bento(cap, spec)
    with prog.step("cluster"):
        info = cluster.connect(address, settings)
        registry = actions._registry()
        aggregator.handle()  # replicas look it up when they start
        if not actions._call(registry.has_archive, bento.tag):
            actions._call(registry.put_archive, bento.tag, export_archive(bento.tag))
    meta = model_metadata(cap, [])
    meta.pop("requirements")
    record = actions._call(registry.new_version, name, bento.tag, spec.to_dict(), meta)
    version = record["versions"][-1]["version"]
    url = f"{actions.base_url(info, settings)}/{name}"
    with prog.step(f"deploy v{version}"):
        actions.roll_out(registry, record, version, url, settings, prog, timeout)
    record = actions._call(registry.set_live, name, version, "deploy")
    if progress:
        prog.note(f"ready at {url}")
    return _deployment(actions.view(record, settings))


def _deployment(view: actions.View) -> Deployment:
    return Deployment(*view)


def get(name: str, *, address: str | None = None) -> Deployment:
    """The deployment ``name`` from the cluster (made by any kernel)."""
    return _deployment(actions.lookup(name, address=address))


def list_deployments(*, address: str | None = None) -> list[Deployment]:
    """Every live deployment in the cluster, sorted by name."""
    settings = Settings.from_env()
    cluster.connect(address, settings)
    records = actions._call(actions._registry().list)
    return [_deployment(actions.view(r, settings))
            for r in sorted(records, key=lambda r: r["name"]) if r["live"]]  # fmt: skip


def rollback(name: str, *, address: str | None = None, progress: bool = True) -> Deployment:
    """Serve the version that was live before the current one (as a new rollout)."""
    return _deployment(actions.rollback(name, address=address, progress=progress))


def scale(
    name: str, min_replicas: int, max_replicas: int, *, address: str | None = None
) -> Deployment:
    """Change the replica range of the live version (no replica restarts)."""
    return _deployment(actions.scale(name, min_replicas, max_replicas, address=address))


def undeploy(name: str, *, address: str | None = None) -> None:
    """Stop serving ``name`` and forget its versions (its Bentos stay in the store)."""
    actions.undeploy(name, address=address)


def start_cluster() -> cluster.ClusterInfo:
    """Start (or reuse) the embedded local Ray cluster and Ray Serve on it."""
    return cluster.connect(None, Settings.from_env())


def stop_cluster() -> bool:
    """Stop the embedded cluster and every deployment on it. False if none was running."""
    return cluster.stop_embedded(Settings.from_env())
