"""Configuration read from the environment, with defaults that work with nothing set.

Every setting is one environment variable; ``jupyter-deploy config`` and the README list
them with the help text below, so the table cannot drift from the code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import ClusterError


def _setting(default: str, help: str) -> str:
    return field(default=default, metadata={"help": help})


# Settings that must be numbers: (lowest, highest, a whole number, may be empty).
_NUMBERS: dict[str, tuple[float, float, bool, bool]] = {
    "ray_port": (1, 65533, True, False),  # it also takes the next two ports
    "http_port": (1, 65535, True, False),
    "start_timeout": (1, 86400, False, False),
    "deploy_timeout": (1, 86400, False, False),
    "object_store_mb": (75, float("inf"), False, True),
    "num_cpus": (1, float("inf"), True, True),  # ray start takes a whole number
}


@dataclass(frozen=True)
class Settings:
    """Effective configuration. Build it with :meth:`from_env`."""

    ray_address: str = _setting(
        "",
        "RAY_ADDRESS: address of an existing Ray cluster (host:port). Empty: use the "
        "embedded local cluster, started on first use.",
    )
    home: str = _setting(
        str(Path.home() / ".jupyter_deploy"),
        "JD_HOME: where the embedded cluster keeps its state file and logs.",
    )
    state_db: str = _setting(
        "",
        "JD_STATE_DB: the control plane's SQLite database (deployments, versions, tokens, "
        "history, saved counters); Bento archives are kept beside it. Empty: "
        "$JD_HOME/state/state.db. It lives on the head node.",
    )
    ray_port: str = _setting(
        "6380",
        "JD_RAY_PORT: GCS port of the embedded Ray head (it also takes the next two ports).",
    )
    http_host: str = _setting(
        "127.0.0.1", "JD_HTTP_HOST: interface the endpoints listen on (0.0.0.0 for all)."
    )
    expose_cluster: str = _setting(
        "0",
        "JD_EXPOSE_CLUSTER: 1 lets other machines reach the embedded Ray head (to add "
        "nodes): it binds this machine's address instead of loopback only. Ray's token "
        "(JD_HOME/ray-auth-token) is required either way; keep it secret.",
    )
    http_port: str = _setting("8000", "JD_HTTP_PORT: port of the Ray Serve HTTP ingress.")
    proxy_location: str = _setting(
        "HeadOnly",
        "JD_PROXY_LOCATION: where Ray Serve runs HTTP proxies: HeadOnly (one endpoint "
        "address) or EveryNode (put your own load balancer in front of the nodes).",
    )
    num_cpus: str = _setting(
        "",
        "JD_NUM_CPUS: logical CPUs the embedded head offers to replicas. Empty: twice the "
        "machine's cores (small models leave replicas mostly idle).",
    )
    object_store_mb: str = _setting(
        "",
        "JD_OBJECT_STORE_MB: object store size of the embedded head, in MB (at least 75). "
        "Empty: Ray's default, 30% of the machine's memory; set it on small machines.",
    )
    ha_proxy: str = _setting(
        "1",
        "JD_HA_PROXY: 1 runs Ray Serve's bundled HAProxy ingress on the embedded cluster "
        "(several times the throughput of the Python proxy); 0 uses the Python proxy.",
    )
    tls_cert: str = _setting(
        "",
        "JD_TLS_CERT: PEM certificate (chain) for HTTPS endpoints on the embedded cluster; "
        "HAProxy terminates TLS with it. Needs JD_TLS_KEY. Empty: plain HTTP.",
    )
    tls_key: str = _setting(
        "", "JD_TLS_KEY: PEM private key of JD_TLS_CERT (read when the cluster starts)."
    )
    replica_ports: str = _setting(
        "30000-30999",
        "JD_REPLICA_PORTS: port range of the replicas' own HTTP servers behind HAProxy "
        "(HAProxy's other ports are JD_HTTP_PORT + 404, 500, 1101 and 1500).",
    )
    start_timeout: str = _setting(
        "90", "JD_START_TIMEOUT: seconds to wait for the embedded cluster to start."
    )
    deploy_timeout: str = _setting(
        "180", "JD_DEPLOY_TIMEOUT: seconds to wait for a new version to become ready."
    )
    public_url: str = _setting(
        "",
        "JD_PUBLIC_URL: base URL clients use to reach the endpoints, when it differs from "
        "http://JD_HTTP_HOST:JD_HTTP_PORT (a proxy, a remote cluster).",
    )

    def __post_init__(self) -> None:
        """A setting that must be a number and is not fails here, in one line."""
        for name, (low, high, whole, optional) in _NUMBERS.items():
            value = getattr(self, name)
            if optional and value == "":
                continue
            try:
                number = int(value) if whole else float(value)
            except ValueError:
                number = None
            if number is None or not low <= number <= high:
                kind = "a whole number" if whole else "a number"
                span = f"at least {low:g}" if high == float("inf") else f"from {low:g} to {high:g}"
                raise ClusterError(f"{env_var(name)} must be {kind} {span}, got {value!r}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read every setting from ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            var = env_var(f.name)
            if var in env:
                values[f.name] = env[var]
        return cls(**values)

    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser()

    @property
    def state_path(self) -> Path:
        return (
            Path(self.state_db).expanduser()
            if self.state_db
            else self.home_path / "state" / "state.db"
        )

    @property
    def http_port_int(self) -> int:
        return int(self.http_port)

    def cpus(self) -> float:
        """Logical CPUs of the embedded head."""
        if self.num_cpus:
            return float(self.num_cpus)
        return float(2 * (os.cpu_count() or 1))


def env_var(field_name: str) -> str:
    """Environment variable of a settings field."""
    return "RAY_ADDRESS" if field_name == "ray_address" else "JD_" + field_name.upper()


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, help) for every setting, for the CLI and the docs."""
    return [
        (env_var(f.name), str(f.default), f.metadata["help"].split(": ", 1)[1])
        for f in fields(Settings)
    ]
