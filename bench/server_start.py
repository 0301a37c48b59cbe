"""Jupyter server start-up time with and without the jupyter_deploy server extension.

``python bench/server_start.py [--runs 5] [--port 8891]`` starts ``jupyter server`` N times
each way, alternating, and times each from launch until ``/api/status`` answers. The
extension must not slow the start: importing it imports neither ray nor bentoml.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TOKEN = "bench-server-start"


def _start_once(port: int, enabled: bool, workdir: Path) -> float:
    """Seconds from launch to the first answer of /api/status; checks the routes exist."""
    config = workdir / f"config_{enabled}.py"
    config.write_text(f"c.ServerApp.jpserver_extensions = {{'jupyter_deploy': {enabled}}}\n")
    cmd = [
        sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}",
        "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1", "--ServerApp.allow_root=True",
        f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={workdir}",
        f"--config={config}",
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"token {TOKEN}"}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = started + 60
        while time.perf_counter() < deadline:
            try:
                if httpx.get(f"{base}/api/status", headers=headers, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        else:
            raise RuntimeError("jupyter server did not answer within 60 s")
        elapsed = time.perf_counter() - started
        route = httpx.get(f"{base}/jupyter-deploy/api/cluster", headers=headers, timeout=30)
        assert (route.status_code == 200) == enabled, (enabled, route.status_code)
        return elapsed
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--port", type=int, default=int(os.environ.get("JD_BENCH_JUPYTER_PORT", 8891)))
    args = p.parse_args()
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="jd-server-start-") as tmp:
        _start_once(args.port, True, Path(tmp))  # warm the OS file cache for both
        for _ in range(args.runs):
            for enabled in (False, True):
                times[enabled].append(_start_once(args.port, enabled, Path(tmp)))
    for enabled, label in ((False, "without"), (True, "with")):
        runs = ", ".join(f"{t:.2f}" for t in times[enabled])
        print(f"{label:>7} the extension: median {statistics.median(times[enabled]):.2f} s "
              f"(runs: {runs})")  # fmt: skip
    ratio = statistics.median(times[True]) / statistics.median(times[False])
    print(f"ratio with/without: {ratio:.3f}")


if __name__ == "__main__":
    main()
