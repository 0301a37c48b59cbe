"""Readiness: is a new version serving yet? Polls Serve and the replicas' reports.

:func:`wait_until_serving` watches new replicas start (a surge rollout or a first
deploy); :func:`wait_until_switched` watches running replicas load a version in place.
Both raise with the replica's own error when a version fails, and time out with advice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import _ray
from .._ray import DEPLOYMENT
from ..errors import DeploymentFailedError, DeploymentTimeoutError

if TYPE_CHECKING:
    from .target import Target

POLL_S = 0.2


def wait_until_switched(
    target: Target, probe: Callable[[], int | None], timeout: float, tick: Callable[[str], None]
) -> None:
    """Wait until every running replica has applied ``target`` (loaded in place)."""
    import ray

    from ..control.registry import handle

    registry = handle()
    key = target.serve_target().key()
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        running = running_ids(target.spec.name)
        acks = ray.get(registry.acks.remote(target.spec.name))
        reports = [acks[r] for r in running if r in acks]
        failed = [r for r in reports if r.failed == key]
        if failed:
            raise DeploymentFailedError(
                f"Version {target.version} of '{target.spec.name}' failed to load: "
                f"{_first_line(failed[0].error or 'no message')}"
            )
        done = sum(r.applied == key for r in reports)
        if running and done == len(running) and probe() == target.version:
            return
        message = f"{done} of {len(running)} replicas switched"
        if message != last:
            tick(message)
            last = message
        time.sleep(POLL_S / 2)
    raise DeploymentTimeoutError(
        f"Version {target.version} of '{target.spec.name}' was not serving after {timeout:.0f} "
        "s; see `jupyter-deploy status` and the replica logs."
    )


def probe(url: str, name: str) -> Callable[[], int | None]:
    """A function returning the version every running replica of ``name`` serves once its
    route ``url`` answers, or None (unreachable, or replicas disagree).

    The route's own ``/readyz`` needs no key and names no version (nothing for a stranger
    to learn), so the version comes from what the replicas reported to the registry.
    """
    import httpx
    import ray

    from ..control.registry import handle

    registry = handle()

    def version() -> int | None:
        try:
            resp = httpx.get(f"{url}/readyz", timeout=2)
        except httpx.HTTPError:
            return None
        if resp.status_code != 200:
            return None
        running = running_ids(name)
        acks = ray.get(registry.acks.remote(name))
        versions = {acks[r].version for r in running if r in acks}
        if not running or len(versions) != 1 or any(r not in acks for r in running):
            return None
        return versions.pop()

    return version


def running_ids(name: str) -> list[str]:
    """Serve's ids of the RUNNING replicas of ``name`` (what replicas report under)."""
    return _ray.app_details(name).running


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
        details = _ray.app_details(target.spec.name)
        if details.status == "DEPLOY_FAILED" and time.time() - submitted > 2:
            raise DeploymentFailedError(
                f"Version {target.version} of '{target.spec.name}' failed to start: "
                f"{_first_line(_failure_message(target.spec.name))}"
            )
        states = [r.state for r in details.replicas]
        running = [r for r in details.replicas if r.state == "RUNNING"]
        # Serve stamps start_time_s when it creates a replica, so old ones predate us;
        # ready means: only new replicas serve, at least min_replicas of them.
        new_only = not fresh or all(r.start_time_s >= submitted - 1 for r in running)
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
