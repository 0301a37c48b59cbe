"""The benchmark's own Ray head, isolated from any other Ray cluster on the machine.

It is jupyter_deploy's embedded head (``jupyter_deploy.control.cluster``) with the bench's own
JD_HOME and ports, so it runs with exactly the settings users get (HAProxy ingress, the
5 s drain period, loopback-only side listeners) and never touches a developer's or the
test suite's cluster. It is stopped through its own process session, never with
``ray stop`` (which kills every Ray process on the machine).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from jupyter_deploy.control import cluster as jd_cluster
from jupyter_deploy.control import lockdown
from jupyter_deploy.settings import Settings

# Apart from the project's defaults and CI's smoke run; override to run two benches at once.
GCS_PORT = int(os.environ.get("JD_BENCH_RAY_PORT", "6390"))
SERVE_PORT = int(os.environ.get("JD_BENCH_SERVE_PORT", "8100"))
REPLICA_PORTS = os.environ.get("JD_BENCH_REPLICA_PORTS", "32100-32600")


@dataclass
class BenchCluster:
    """An embedded head for the reference app, and how long it took to come up."""

    workdir: Path
    haproxy: bool = True
    num_cpus: int = 2
    start_s: float = 0.0
    info: jd_cluster.ClusterInfo | None = field(default=None, init=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{GCS_PORT}"

    @property
    def settings(self) -> Settings:
        return Settings(
            home=str(self.workdir / "home"),
            ray_port=str(GCS_PORT),
            http_port=str(SERVE_PORT),
            replica_ports=REPLICA_PORTS,
            num_cpus=str(self.num_cpus),
            ha_proxy="1" if self.haproxy else "0",
        )

    def start(self) -> float:
        """Start the head; return seconds until ``ray start`` reported it running."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        self.info = jd_cluster.start_embedded(self.settings)
        self.start_s = time.monotonic() - began
        return self.start_s

    def stop(self) -> None:
        """End this head's process session (and only it)."""
        jd_cluster.stop_embedded(self.settings)

    def driver_env(self) -> dict[str, str]:
        """Environment for a driver subprocess that deploys into this cluster."""
        return {**os.environ, **lockdown.driver_environment(self.settings),
                "RAY_ADDRESS": self.address}  # fmt: skip
