"""What the panel's REST routes do, as plain functions over :mod:`jupyter_deploy.api`.

The handlers run these in a child process (:mod:`.worker`; they block on Ray) and send
back what they return as JSON. They never start a cluster behind the user's back: listing with no
cluster running answers ``running: false`` so the panel can offer to start one.
"""

from __future__ import annotations

from typing import Any

from ..errors import ClusterError

#: Window (seconds) of the live request rate and p95 latency shown in the list.
LIVE_WINDOW_S = 30


def _reachable() -> dict[str, Any]:
    """Whether a cluster is running, from the state file (no Ray call, never starts one).

    A stopped or replaced embedded cluster is noticed by :mod:`.worker`, which replaces
    the process holding the stale Ray connection before calling this.
    """
    from ..control import cluster
    from ..settings import Settings

    settings = Settings.from_env()
    if settings.ray_address:
        return {"running": True, "embedded": False, "address": settings.ray_address}
    state = cluster.read_state(settings)
    if state is None:
        return {"running": False, "embedded": True, "address": None}
    return {
        "running": True,
        "embedded": True,
        "address": state.address,
        "http": cluster.base_url(state, settings),
    }


def _require_cluster() -> dict[str, Any]:
    status = _reachable()
    if not status["running"]:
        raise ClusterError(
            "No cluster is running. Start the embedded one (panel button, or "
            "`jupyter-deploy cluster start`)."
        )
    return status


def cluster_status() -> dict[str, Any]:
    """Whether a cluster is running, and where."""
    return _reachable()


def start_cluster() -> dict[str, Any]:
    """Start (or reuse) the embedded cluster and connect to it."""
    from ..client import api
    from ..control import cluster
    from ..settings import Settings

    info = api.start_cluster()
    return {
        "running": True,
        "embedded": info.embedded,
        "address": info.address,
        "http": cluster.base_url(info, Settings.from_env()),
    }


def _row(dep: Any) -> dict[str, Any]:
    """One deployment as the panel lists it, with its live figures and traffic split."""
    from ..client.traffic import describe

    status = dep._status
    auto = dep.spec.get("autoscaling", {})
    live = dep.metrics(LIVE_WINDOW_S)
    split = describe(dep._record, live["shadow"])
    split["weights"] = {str(v): w for v, w in split["weights"].items()}
    return {
        "name": dep.name,
        "status": status.get("status", ""),
        "message": status.get("message", ""),
        "version": dep.version,
        "versions": [v["version"] for v in dep.versions()],
        "replicas": {
            "running": status.get("replicas", {}).get("RUNNING", 0),
            "min": auto.get("min_replicas"),
            "max": auto.get("max_replicas"),
        },
        "url": dep.url,
        "curl": dep.curl(),
        "rate_rps": live["rate_rps"],
        "p95_ms": live["latency_ms"]["p95"],
        "error_rate": live["error_rate"],
        "total_requests": live["total_requests"],
        "traffic": split,
    }


def list_deployments() -> dict[str, Any]:
    """The cluster's status and every deployment with its live figures."""
    from ..client import api

    status = _reachable()
    if not status["running"]:
        return {"cluster": status, "deployments": []}
    return {"cluster": status, "deployments": [_row(d) for d in api.list_deployments()]}


def deployment(name: str) -> dict[str, Any]:
    """One deployment, as listed."""
    from ..client import api

    _require_cluster()
    return _row(api.get(name))


def scale(name: str, min_replicas: int, max_replicas: int) -> dict[str, Any]:
    """New replica range of ``name`` (no restarts)."""
    from ..client import api

    _require_cluster()
    return _row(api.scale(name, min_replicas, max_replicas))


def rollback(name: str) -> dict[str, Any]:
    """Serve ``name``'s previous version again."""
    from ..client import api

    _require_cluster()
    return _row(api.rollback(name, progress=False))


def promote(name: str) -> dict[str, Any]:
    """All of ``name``'s traffic to its newest version (ends a split or a canary)."""
    from ..client import api

    _require_cluster()
    return _row(api.get(name).promote())


def delete(name: str) -> dict[str, Any]:
    """Stop serving ``name``."""
    from ..client import api

    _require_cluster()
    api.undeploy(name)
    return {"deleted": name}


def metrics(name: str, window_s: int) -> dict[str, Any]:
    """Traffic, latency and errors of ``name`` over the last ``window_s`` seconds."""
    from ..client import api

    _require_cluster()
    return dict(api.get(name).metrics(window_s))
