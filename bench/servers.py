"""The servers under test as uniform endpoints, and the hand-written Ray Serve row.

An ``Endpoint`` is what the load generator needs (URL, token). ``deploy_minimal_ray``
deploys the minimal Ray Serve app (ray_app.py) into the bench cluster and times the
deploy from the outside.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cluster import SERVE_PORT, BenchCluster
from loadgen import wait_until

RAY_APP = Path(__file__).with_name("ray_app.py")


@dataclass
class Endpoint:
    """One server under test: where to send requests, with which bearer token."""

    label: str
    url: str
    token: str | None = None


@dataclass(frozen=True)
class DeployTiming:
    """How long each step of a deploy took, in seconds (None: never reached)."""

    imports_s: float
    connect_s: float
    serve_start_s: float
    serve_run_s: float  # serve.run() call until it returned
    first_ok_s: float | None  # serve.run() call until the first 200 (expected answer)

    def to_dict(self) -> dict[str, float | None]:
        return dict(self.__dict__)


def replica_pids(app_name: str) -> list[int]:
    """PIDs of the Ray Serve replicas of ``app_name``, found by their process title.

    Ray names replica processes ``ray::ServeReplica:<app>:<deployment>``; this works for
    any cluster on the machine without connecting to it.
    """
    import psutil

    prefix = f"ray::ServeReplica:{app_name}:"
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if cmdline and cmdline[0].startswith(prefix) and "." not in cmdline[0][len(prefix) :]:
            # A title with ".method" is a replica in the middle of a call such as a
            # graceful shutdown; the bare title is a serving replica.
            found.append(proc.pid)
    return found


def memory_mb(pids: list[int]) -> dict[str, float]:
    """Resident (RSS) and unique (USS) memory of ``pids`` in MiB, per process median."""
    import psutil

    rss, uss = [], []
    for pid in pids:
        try:
            info = psutil.Process(pid).memory_full_info()
        except psutil.Error:
            continue
        rss.append(info.rss / 2**20)
        uss.append(info.uss / 2**20)
    if not rss:
        return {}
    return {
        "processes": len(rss),
        "rss_mb": statistics.median(rss),
        "uss_mb": statistics.median(uss),
    }


def deploy_minimal_ray(
    cluster: BenchCluster,
    model_path: Path,
    name: str,
    probe_body: str,
    expect: object = None,
    batch: bool = False,
    on_serve_run: Callable[[], None] | None = None,
    deadline_s: float = 180.0,
) -> DeployTiming:
    """Deploy (or redeploy) the minimal app and time it, polling for the first good answer.

    The poll runs alongside the driver because a redeploy behind HAProxy keeps
    ``serve.run`` blocked through the old replica's drain period, long after the new
    version answers; the figure that matters to a user is the first good answer. For a
    redeploy pass ``expect`` (the new version's prediction for ``probe_body``).
    ``on_serve_run`` is called when the driver is about to call ``serve.run`` (after its
    slow imports), e.g. to start load exactly around the deploy proper.
    """
    url = f"http://127.0.0.1:{SERVE_PORT}/{name}/predict"
    first_ok: list[float | None] = [None]
    lines: list[str] = []

    def poll() -> None:
        first_ok[0] = wait_until(url, probe_body, None, deadline_s, expect)

    cmd = [sys.executable, str(RAY_APP), "--model", str(model_path), "--name", name]
    cmd += ["--port", str(SERVE_PORT)] + (["--batch"] if batch else [])
    began_wall, began = time.time(), time.monotonic()
    with tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(
            cmd, env=cluster.driver_env(), stdout=subprocess.PIPE, stderr=errors, text=True
        )
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            if line.strip() == "SERVE_RUN" and on_serve_run is not None:
                on_serve_run()
        proc.wait(timeout=deadline_s)
        poller.join(timeout=deadline_s)
        errors.seek(0)
        stamps = _stamps(lines, errors.read())
    # Convert the driver's wall-clock stamp for "serve.run began" to our monotonic clock.
    run_began = began + (stamps["serve_started"] - began_wall)
    return DeployTiming(
        imports_s=stamps["imported"] - stamps["begin"],
        connect_s=stamps["connected"] - stamps["imported"],
        serve_start_s=stamps["serve_started"] - stamps["connected"],
        serve_run_s=stamps["running"] - stamps["serve_started"],
        first_ok_s=None if first_ok[0] is None else first_ok[0] - run_began,
    )


def _stamps(stdout_lines: list[str], stderr: str) -> dict[str, float]:
    line = next((x for x in stdout_lines if x.startswith("STAMPS ")), None)
    if line is None:
        raise RuntimeError(f"ray_app.py failed:\n{stderr[-3000:]}")
    return json.loads(line.removeprefix("STAMPS "))


def delete_minimal_ray(cluster: BenchCluster, name: str) -> None:
    """Delete app ``name`` from the bench cluster (idle replicas still cost CPU)."""
    subprocess.run(
        [sys.executable, str(RAY_APP), "--name", name, "--delete"],
        env=cluster.driver_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
