"""Run one version of a deployment as a Ray Serve application and wait until it serves.

One application per deployment, at route ``/<name>``. Ray Serve's own rolling update
stops an old replica *before* starting its replacement, which drops requests when a
deployment has one replica. So a new version is rolled out with a surge: the replica
floor is raised by one while the versions switch, then restored by a config-only update
that restarts nothing (:func:`rollout`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import DeploymentFailedError, DeploymentNotFoundError, DeploymentTimeoutError
from .spec import Autoscaling, DeploymentSpec

DEPLOYMENT = "model"
POLL_S = 0.2


@dataclass(frozen=True)
class Target:
    """What should serve: one version of a deployment with its Bento and token."""

    spec: DeploymentSpec
    version: int
    bento_tag: str
    token: str


def _application(target: Target, autoscaling: Autoscaling) -> Any:
    from ray import serve

    from .replica import ModelReplica

    spec = target.spec
    config = {
        "name": spec.name,
        "version": target.version,
        "bento_tag": target.bento_tag,
        "max_batch_rows": spec.max_batch_rows,
        "token_sha256": hashlib.sha256(target.token.encode()).hexdigest() if spec.auth else None,
        "monitoring": spec.monitoring,
    }
    res = spec.resources
    actor_options: dict[str, Any] = {"num_cpus": res.num_cpus, "num_gpus": res.num_gpus}
    if res.custom:
        actor_options["resources"] = dict(res.custom)
    deployment = serve.deployment(ModelReplica).options(  # type: ignore[attr-defined]
        name=DEPLOYMENT,
        max_ongoing_requests=res.max_ongoing_requests,
        autoscaling_config={
            "min_replicas": autoscaling.min_replicas,
            "initial_replicas": max(1, autoscaling.min_replicas),
            "max_replicas": autoscaling.max_replicas,
            "target_ongoing_requests": autoscaling.target_ongoing_requests,
            "upscale_delay_s": autoscaling.upscale_delay_s,
            "downscale_delay_s": autoscaling.downscale_delay_s,
        },
        ray_actor_options=actor_options,
        logging_config={"enable_access_log": False, "log_level": "WARNING"},
        # A replica leaves the routing table before it stops; requests take milliseconds,
        # so Ray's 20 s shutdown grace only slows rollouts down.
        graceful_shutdown_wait_loop_s=0.5,
        graceful_shutdown_timeout_s=3,
    )
    # A stable code version per (version, Bento): without one, every serve.run gets a random
    # version and restarts every replica, even for a replica-range change. Ray 2.60 removed
    # the public `version=` option but still honours this attribute (client.py);
    # tests/test_versions.py::test_scale_changes_the_range_without_restarting guards it.
    deployment._version = f"{target.version}-{target.bento_tag}"
    return deployment.bind(config)


def submit(target: Target, autoscaling: Autoscaling) -> None:
    """Hand ``target`` with ``autoscaling`` to Serve without waiting (same args: no restart)."""
    from ray import serve

    serve._run(  # non-blocking variant of serve.run: we poll with our own deadline
        _application(target, autoscaling),
        _blocking=False,
        name=target.spec.name,
        route_prefix=target.spec.route,
    )


def running_replicas(name: str) -> int:
    """Replicas of ``name`` in the RUNNING state (0 if the application does not exist)."""
    return int(application_status(name)["replicas"].get("RUNNING", 0))


def rollout(
    target: Target,
    probe: Callable[[], int | None],
    timeout: float,
    tick: Callable[[str], None] = lambda _msg: None,
) -> None:
    """Make ``target`` the serving version with no failed requests; raise if it fails.

    ``probe()`` returns the version the endpoint answers with (None if unreachable).
    """
    auto = target.spec.autoscaling
    # Replicas of another version serving now: switch with a surge. If the route already
    # answers with this version (restoring it after a failed rollout), replicas of this
    # very code version are serving and only the replica range may change.
    current = running_replicas(target.spec.name) if probe() != target.version else 0
    submitted = time.time()
    if current:
        floor = max(current, auto.min_replicas) + 1
        surge = Autoscaling(
            min_replicas=floor,
            max_replicas=max(auto.max_replicas, floor),
            target_ongoing_requests=auto.target_ongoing_requests,
            upscale_delay_s=auto.upscale_delay_s,
            downscale_delay_s=auto.downscale_delay_s,
        )
        submit(target, surge)
    else:
        submit(target, auto)
    wait_until_serving(target, submitted, probe, timeout, tick, fresh=bool(current))
    if current:
        submit(target, auto)  # same init args: a config-only update, nothing restarts


def _replicas(name: str) -> tuple[str, list[dict[str, Any]]]:
    """Application status and its replicas' details (state, start time) from Serve."""
    from ray.serve._private.api import _get_global_client

    client = _get_global_client()
    assert client is not None  # connect() started Serve
    details = client.get_serve_details()
    app = details.get("applications", {}).get(name)
    if app is None:
        return "NOT_STARTED", []
    dep = app.get("deployments", {}).get(DEPLOYMENT, {})
    status = app.get("status")
    return str(getattr(status, "value", status)), list(dep.get("replicas", []))


def wait_until_serving(
    target: Target,
    submitted: float,
    probe: Callable[[], int | None],
    timeout: float,
    tick: Callable[[str], None],
    fresh: bool = True,
) -> None:
    """Wait until the route answers with ``target.version`` from ≥ min_replicas replicas.

    With ``fresh``, only replicas created after ``submitted`` may be serving (the old
    version's are gone). A DEPLOY_FAILED status counts only from 2 s after the request:
    until the controller has read it, the status may still be the previous attempt's
    (a real failure takes Serve about 18 s to declare).
    """
    deadline = time.monotonic() + timeout
    wanted = max(1, target.spec.autoscaling.min_replicas)
    last = ""
    while time.monotonic() < deadline:
        status, replicas = _replicas(target.spec.name)
        if status == "DEPLOY_FAILED" and time.time() - submitted > 2:
            raise DeploymentFailedError(
                f"Version {target.version} of '{target.spec.name}' failed to start: "
                f"{_first_line(_failure_message(target.spec.name))}"
            )
        states = [str(getattr(r.get("state"), "value", r.get("state"))) for r in replicas]
        running = [r for r, state in zip(replicas, states, strict=True) if state == "RUNNING"]
        # Serve stamps start_time_s when it creates a replica, so old ones predate us;
        # ready means: only new replicas serve, at least min_replicas of them.
        new_only = not fresh or all(r.get("start_time_s", 0) >= submitted - 1 for r in running)
        if new_only and len(running) >= wanted and probe() == target.version:
            return
        starting = sum(state in ("STARTING", "PENDING_ALLOCATION") for state in states)
        message = f"{len(running)} running, {starting} starting"
        if message != last:
            tick(message)
            last = message
        time.sleep(POLL_S)
    raise DeploymentTimeoutError(
        f"Version {target.version} of '{target.spec.name}' was not serving after {timeout:.0f} "
        "s. Replicas may be waiting for CPUs (lower num_cpus, or raise JD_NUM_CPUS), or "
        "still starting; see `jupyter-deploy status`."
    )


def _failure_message(name: str) -> str:
    from ray import serve

    app = serve.status().applications.get(name)
    if app is None:
        return "the application disappeared"
    dep = app.deployments.get(DEPLOYMENT)
    return dep.message if dep and dep.message else app.message


def _first_line(message: str) -> str:
    lines = [line for line in message.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line]
    return (errors[-1] if errors else lines[0] if lines else "no message").strip()[:500]


def delete_application(name: str) -> None:
    from ray import serve

    if name not in serve.status().applications:
        raise DeploymentNotFoundError(f"No application '{name}' is running in the cluster.")
    serve.delete(name, _blocking=True)


def application_status(name: str) -> dict[str, Any]:
    """Serve's view of one application: status, message, replicas by state."""
    from ray import serve

    app = serve.status().applications.get(name)
    if app is None:
        return {"status": "NOT_RUNNING", "message": "", "replicas": {}}
    dep = app.deployments.get(DEPLOYMENT)
    states = dep.replica_states.items() if dep else []
    return {
        "status": str(getattr(app.status, "value", app.status)),
        "message": app.message,
        "replicas": {str(getattr(k, "value", k)): int(v) for k, v in states},
    }
