"""HTTP load generation with ``wrk`` on 127.0.0.1, plus small HTTP probes.

Why wrk: it is a compiled, event-loop load generator (Debian package ``wrk``) that keeps 32
connections busy from one thread for a few percent of one core, so on a 2-core machine it
leaves nearly all CPU to the server under test. A Python load generator would compete with
the server for the same cores and measure itself. wrk is closed-loop (each connection
sends its next request when the previous answer arrives), so the latency figures are
per-request service times under that concurrency, not open-loop response times.

The CPU wrk itself used in every run is read from the kernel (``wait4`` rusage) and
reported, so its overhead is a measured figure rather than an assumption.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

# Lua run inside wrk: set the POST body and headers, and print the results as one JSON
# line, because wrk's text summary rounds and omits the error breakdown.
_LUA_TEMPLATE = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{auth}
done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, '
    .. '"p99_us": %d, "max_us": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """One wrk run: throughput, latency percentiles, failures and wrk's own CPU use."""

    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # non-2xx/3xx answers + socket errors + timeouts
    loadgen_cpu_s: float  # user + system CPU seconds wrk used

    @property
    def loadgen_cpu_share(self) -> float:
        """Fraction of one core wrk used during the run."""
        return self.loadgen_cpu_s / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "loadgen_cpu_share": self.loadgen_cpu_share}


def require_wrk() -> str:
    """Path of the wrk binary, or an error saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk not found: install it with `apt-get install -y wrk`.")
    return path


def _lua_script(body: str, token: str | None) -> Path:
    """Write the wrk Lua script for ``body`` (and a bearer token) to a temp file."""
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
    lua = _LUA_TEMPLATE.format(body=json.dumps(body), auth=auth)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(lua)
    return Path(handle.name)


def _parse(stdout: str, cpu_s: float) -> LoadResult:
    line = next((x for x in stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{stdout[-2000:]}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw[k] for k in ("connect", "read", "write", "status", "timeout"))
    return LoadResult(
        requests=raw["requests"],
        seconds=seconds,
        rps=raw["requests"] / seconds if seconds else 0.0,
        p50_ms=raw["p50_us"] / 1e3,
        p90_ms=raw["p90_us"] / 1e3,
        p99_ms=raw["p99_us"] / 1e3,
        max_ms=raw["max_us"] / 1e3,
        errors=errors,
        loadgen_cpu_s=cpu_s,
    )


def start_wrk(
    url: str, body: str, connections: int, seconds: float, token: str | None = None
) -> tuple[subprocess.Popen[str], Path]:
    """Start wrk in the background (for load that runs while something else happens)."""
    script = _lua_script(body, token)
    # One thread: one epoll loop drives 64 connections at the rates seen here, and a
    # second thread would only take CPU from the server under test.
    cmd = [
        require_wrk(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, script


def finish_wrk(proc: subprocess.Popen[str], script: Path, stop: bool = False) -> LoadResult:
    """Wait for a started wrk (``stop``: end it now) and return its result and CPU time.

    wrk ends early on SIGINT and still reports the requests of the shortened run, which
    lets a load window last exactly as long as the event it surrounds.
    """
    if stop:
        proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None
    stdout = proc.stdout.read()
    # wait4 returns the child's rusage: the CPU wrk spent, measured by the kernel.
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    script.unlink(missing_ok=True)
    return _parse(stdout, usage.ru_utime + usage.ru_stime)


def run_wrk(
    url: str, body: str, connections: int, seconds: float, token: str | None = None
) -> LoadResult:
    """Run wrk for ``seconds`` against ``url`` and return the measured result."""
    proc, script = start_wrk(url, body, connections, seconds, token)
    return finish_wrk(proc, script)


def post_json(
    url: str, body: str, token: str | None = None, timeout: float = 10.0
) -> httpx.Response:
    """One POST with the benchmark's headers (used by probes, not for load)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(url, content=body, headers=headers, timeout=timeout)


def wait_until(
    url: str, body: str, token: str | None, deadline_s: float, expect: object = None
) -> float | None:
    """Poll until ``url`` answers 200 (and ``predictions[0] == expect`` if given).

    Returns the monotonic time of the first such answer, or None at the deadline. The
    poll interval is short (20 ms) because these times are themselves figures.
    """
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            resp = post_json(url, body, token, timeout=5.0)
            if resp.status_code == 200 and (
                expect is None or resp.json().get("predictions", [None])[0] == expect
            ):
                return time.monotonic()
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    return None
