"""The public Python API. Every front door (magics, CLI, panel, notebooks) calls these."""

from __future__ import annotations

import contextlib
from typing import Any

from .. import _ray
from ..build.capture import capture, resolve
from ..control import cluster
from ..control.records import CanaryPolicy
from ..errors import InvalidSpecError
from ..monitoring import aggregator
from ..progress import Progress
from ..settings import Settings
from ..spec import Autoscaling, DeploymentSpec, Resources, name_from_variable
from . import actions, keys, traffic
from .deployment import Deployment


def deploy(
    model: Any,
    name: str | None = None,
    *,
    sample: Any = None,
    min_replicas: int = Autoscaling.min_replicas,
    max_replicas: int = Autoscaling.max_replicas,
    target_ongoing_requests: float = Autoscaling.target_ongoing_requests,
    num_cpus: float = Resources.num_cpus,
    num_gpus: float = Resources.num_gpus,
    resources: dict[str, float] | None = None,
    auth: bool = DeploymentSpec.auth,
    allow_nan: bool = False,
    max_batch_rows: int = DeploymentSpec.max_batch_rows,
    monitoring: bool = DeploymentSpec.monitoring,
    reference: Any = None,
    log_sample_rate: float = DeploymentSpec.log_sample_rate,
    drift: dict[str, float] | None = None,
    log_retention_days: int = DeploymentSpec.log_retention_days,
    log_redact: tuple[str, ...] = DeploymentSpec.log_redact,
    explain_timeout_s: float = DeploymentSpec.explain_timeout_s,
    importance_rows_per_s: float = DeploymentSpec.importance_rows_per_s,
    segments: tuple[str, ...] | list[str] = DeploymentSpec.segments,
    fairness: dict[str, float] | None = None,
    runtime: str = DeploymentSpec.runtime,
    shadow: float | None = None,
    canary: float | dict[str, Any] | None = None,
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
        Require ``Authorization: Bearer <key>`` on every route but the probes (default
        True). The first key has every scope; it is ``dep.token`` in this kernel only.
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
    explain_timeout_s
        Seconds one ``/explain`` request may take before it is answered 503 with the
        reason (default 5; only model-agnostic explanations come near it).
    importance_rows_per_s
        Rows of live predict traffic each replica explains per second, in its explain
        thread and within a small share of its time, for the global importance that
        :meth:`Deployment.importance` and ``%monitor`` show beside the deploy-time
        sample's (default 2; 0 turns it off and skips the deploy-time figures).
    segments
        Input columns (e.g. ``["sex", "region"]``) whose values split the monitoring:
        requests, predictions, accuracy from feedback and drift per value
        (:meth:`Deployment.segments`); gaps between values are flagged.
    fairness
        Gap thresholds for segments: ``{"parity_gap": 0.1, "accuracy_gap": 0.1,
        "min_count": 30}`` (defaults).
    runtime
        What runs the model in the replicas: ``"python"`` (default) calls the model's own
        ``predict``; ``"onnx"`` converts it to an ONNX graph at deploy time, checks that
        the graph answers like the model on ``sample`` (or on rows drawn from
        ``reference``), and serves the graph with onnxruntime: same routes, validation,
        monitoring and answers. A model that cannot be converted, or whose graph
        disagrees, is refused and nothing is deployed.
    shadow
        Deploy the new version as a shadow of the live one: it gets a copy of this share of
        the requests after each caller's answer; callers only ever see the live answers.
    canary
        Roll the new version out as a canary: a first share (``0.1``) or settings
        ``{"steps": [0.1, 0.25, 0.5, 1.0], "interval_s": 60, "max_error_rate": 0.01,
        "max_latency_ratio": 1.5, "min_requests": 50}`` (the defaults). A controller in the
        cluster judges it every ``interval_s`` against the live version: healthy, it takes
        the next share and is promoted at 1.0; more errors or a slower p95, it goes back to
        0 % and is marked failed. It keeps going when this kernel exits; see ``traffic()``.
    address
        Ray cluster address; default ``RAY_ADDRESS``, else the embedded local cluster.
    timeout
        Seconds to wait for the new version to serve (default ``JD_DEPLOY_TIMEOUT``).

    Returns
    -------
    Deployment
        The live deployment's handle (``url``, ``token``, ``predict``, ``rollback``...).
    """
    if shadow is not None and canary is not None:
        raise InvalidSpecError("A new version is a shadow or a canary, not both.")
    if canary is not None:
        CanaryPolicy.parse(canary)  # a bad option fails before anything is built
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
        explain_timeout_s=explain_timeout_s,
        importance_rows_per_s=importance_rows_per_s,
        segments=tuple(segments),
        fairness=dict(fairness or {}),
        runtime=runtime,
    )
    notebook = (namespace or {}).get("__session__")
    prog = Progress(f"deploy {name}", enabled=progress)
    with prog.step("capture"):
        cap = capture(obj, sample=sample, reference=reference, allow_nan=allow_nan,
                      variable=variable, notebook=notebook,
                      importance=spec.importance_rows_per_s > 0 and spec.monitoring)  # fmt: skip
        unknown = [c for c in spec.segments if c not in cap.schema.names]
        if unknown:
            raise InvalidSpecError(f"segments {unknown} are not input columns of {name}; "
                                   f"columns: {cap.schema.names}")  # fmt: skip
    if spec.runtime == "onnx":
        from ..export.onnx import for_serving

        with prog.step("convert to ONNX"):
            for_serving(cap, sample)
    from ..build.packaging import build_bento, export_archive, model_metadata

    with prog.step("package"):
        bento = build_bento(cap, spec)
    with prog.step("cluster"):
        info, _ = actions.connect(address, settings, prog)
        registry = actions.registry()
        aggregator.handle()  # replicas look it up when they start
        if not _ray.call(registry.has_archive, bento.tag):
            _ray.call(registry.put_archive, bento.tag, export_archive(bento.tag))
    meta = model_metadata(cap, [])
    meta.pop("requirements")
    rec = _ray.call(registry.new_version, name, bento.tag, spec.to_dict(), meta)
    if spec.auth:  # a new deployment's first key: its secret stays in this kernel
        rec = keys.first_key(name) or rec
    version = rec.newest.version
    url = f"{cluster.base_url(info, settings)}/{name}"
    if shadow is not None or canary is not None:
        return _deployment(_beside(rec, version, shadow, canary, settings, prog))
    with prog.step(f"deploy v{version}"):
        actions.roll_out(rec, version, url, settings, prog, timeout)
    rec = _ray.call(registry.set_live, name, version, "deploy")
    if progress:
        prog.note(f"ready at {url}")
    return _deployment(actions.view(rec, settings))


def _beside(
    rec: Any,
    version: int,
    shadow: float | None,
    canary: float | dict[str, Any] | None,
    settings: Settings,
    prog: Progress,
) -> actions.View:
    """Start ``version`` (just recorded) beside the live one, as a shadow or a canary; drop
    it if that fails."""
    try:
        if canary is not None:
            return traffic.start_canary(rec, version, canary, settings, prog)
        assert shadow is not None
        live, split = traffic.with_shadow(rec, version, shadow)
        with prog.step(f"shadow v{version}"):
            return traffic.apply(rec, settings, live, split, "shadow")
    except BaseException:
        _ray.call(actions.registry().drop_version, rec.name, version)
        raise


def _deployment(view: actions.View) -> Deployment:
    return Deployment(*view)


def get(name: str, *, address: str | None = None) -> Deployment:
    """The deployment ``name`` from the cluster (made by any kernel)."""
    return _deployment(actions.lookup(name, address=address))


def list_deployments(*, address: str | None = None) -> list[Deployment]:
    """Every live deployment in the cluster, sorted by name."""
    settings = Settings.from_env()
    return [_deployment(actions.view(r, settings)) for r in actions.live_records(address)]


def rollback(name: str, *, address: str | None = None, progress: bool = True) -> Deployment:
    """Serve the version that was live before the current one (as a new rollout)."""
    return _deployment(traffic.rollback(name, address=address, progress=progress))


def scale(
    name: str, min_replicas: int, max_replicas: int, *, address: str | None = None
) -> Deployment:
    """Change the replica range of the live version (no replica restarts)."""
    return _deployment(actions.scale(name, min_replicas, max_replicas, address=address))


def undeploy(name: str, *, address: str | None = None) -> None:
    """Stop serving ``name`` and forget its versions (its Bentos stay in the store)."""
    actions.undeploy(name, address=address)


def start_cluster(*, progress: bool = False) -> cluster.ClusterInfo:
    """Start (or reuse) the embedded local Ray cluster, and restore every deployment.

    Deployments live in the control plane's store, so after a stop, a crash or a reboot
    they come back at their live version, on their route, with their token and counters.
    """
    prog = Progress("cluster", enabled=progress)
    info, restored = actions.connect(None, Settings.from_env(), prog, force=True)
    for r in restored:
        prog.note(f"restored {r.name} v{r.version}")
    return info


def stop_cluster(*, forget: bool = False) -> bool:
    """Stop the embedded cluster. False if none was running.

    Deployments are kept in the store (counters saved first) and come back with the next
    :func:`start_cluster`; ``forget=True`` drops them: versions, tokens, history, counters,
    archives and payload logs.
    """
    settings = Settings.from_env()
    if cluster.read_state(settings) is not None:
        with contextlib.suppress(Exception):  # a cluster that cannot answer has nothing to save
            cluster.connect(None, settings)
            actions.checkpoint()
    stopped = cluster.stop_embedded(settings)
    if forget:
        cluster.forget_state(settings)
    return stopped
