"""Run one version of a deployment as a Ray Serve application and wait until it serves.

One application per deployment, at route ``/<name>``. A new version is rolled out in one
of two ways (:func:`rollout`):

- **in place**, when the replica settings (auth, batch limit, monitoring, resources) are
  those of the serving version: only Serve's ``user_config`` (a
  :class:`~jupyter_deploy.control.records.ServeTarget`) changes, Serve pushes it to every
  running replica's ``reconfigure()``, which loads the new Bento beside the old one and
  swaps (:mod:`jupyter_deploy.replica.app`). No
  process starts, no replica leaves the routing table: about a second instead of the
  four a new Ray worker takes to start and import the stack;
- **with a surge** otherwise: Ray Serve's own rolling update stops an old replica
  *before* starting its replacement, which drops requests when a deployment has one
  replica, so the replica floor is raised by one while the versions switch, then
  restored by a config-only update that restarts nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import _ray
from .._ray import DEPLOYMENT
from ..errors import DeploymentNotFoundError
from ..spec import Autoscaling
from .readiness import wait_until_serving, wait_until_switched
from .target import Target, code_key, deployment_options, replica_settings


def _application(target: Target, autoscaling: Autoscaling) -> Any:
    from ray import serve

    from ..replica.app import ModelReplica

    key = code_key(target)
    # Init args: what the replica process is built with. The version it serves is Serve's
    # user_config, pushed to running replicas through reconfigure() (an in-place switch).
    config = replica_settings(target)
    options = deployment_options(target, autoscaling)  # also the KubeRay export's
    deployment = serve.deployment(ModelReplica).options(  # type: ignore[attr-defined]
        name=DEPLOYMENT, **options
    )
    _ray.set_code_version(deployment, key)  # one code version per replica settings
    return deployment.bind(config)


def submit(target: Target, autoscaling: Autoscaling) -> None:
    """Hand ``target`` with ``autoscaling`` to Serve without waiting (same args: no restart)."""
    _ray.submit(_application(target, autoscaling), target.spec.name, target.spec.route)


def running_replicas(name: str) -> int:
    """Replicas of ``name`` in the RUNNING state (0 if the application does not exist)."""
    return int(application_status(name)["replicas"].get("RUNNING", 0))


def rollout(
    target: Target,
    probe: Callable[[], int | None],
    timeout: float,
    tick: Callable[[str], None] = lambda _msg: None,
    serving: Target | None = None,
) -> None:
    """Make ``target`` the serving version with no failed requests; raise if it fails.

    ``probe()`` returns the version the endpoint answers with (None if unreachable);
    ``serving`` is the version that serves now, if any.
    """
    name, auto = target.spec.name, target.spec.autoscaling
    key = code_key(target)
    current = running_replicas(name)
    if current and serving is not None and code_key(serving) == key:
        submit(target, auto)  # same code version: Serve pushes the new user_config in place
        wait_until_switched(target, probe, timeout, tick)
        return
    # Replicas of another version serving now: switch with a surge. If the route already
    # answers with this version (restoring it after a failed rollout), replicas of this
    # very code version are serving and only the replica range may change.
    if probe() == target.version:
        current = 0
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
