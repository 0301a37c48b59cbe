"""A standalone bench script's own jupyter_deploy cluster: its ports, a fresh home.

Call :func:`own_cluster` before importing jupyter_deploy (it reads its settings once): the
ports are the script's unless the environment sets them (to run two benches at once), the
JD_HOME and BENTOML_HOME are new folders, and RAY_ADDRESS is dropped, so a bench never
touches a developer's, the test suite's or CI's cluster.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def own_cluster(
    prefix: str, ray_port: int, http_port: int, replica_ports: str
) -> tempfile.TemporaryDirectory[str]:
    """Point jupyter_deploy at a cluster of the caller's own; the folder holds its homes."""
    os.environ.setdefault("JD_RAY_PORT", str(ray_port))
    os.environ.setdefault("JD_HTTP_PORT", str(http_port))
    os.environ.setdefault("JD_REPLICA_PORTS", replica_ports)
    os.environ.pop("RAY_ADDRESS", None)
    tmp = tempfile.TemporaryDirectory(prefix=f"jd-bench-{prefix}-")
    os.environ["JD_HOME"] = str(Path(tmp.name) / "home")
    os.environ["BENTOML_HOME"] = str(Path(tmp.name) / "bentoml")  # BentoML reads it once
    return tmp
