"""Connect to Ray: the embedded local head by default, or an existing cluster.

The embedded head is ``ray start --head --block`` run as its own session, so it outlives
the kernel that started it; its PID and address live in ``$JD_HOME/cluster.json`` so
every kernel, the CLI and the server extension find the same cluster, and
:func:`stop_embedded` stops exactly that cluster (``ray stop`` would kill every Ray on
the machine).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import _ray
from ..errors import ClusterError
from ..settings import Settings
from . import lockdown, tls

_log = logging.getLogger(__name__)


@dataclass
class ClusterInfo:
    """Where the cluster is and whether jupyter_deploy started it."""

    address: str
    embedded: bool
    pid: int | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    started_at: float = 0.0
    proxy_location: str = "HeadOnly"


def _state_file(settings: Settings) -> Path:
    return settings.home_path / "cluster.json"


def _pid_alive(pid: int | None) -> bool:
    """Whether ``pid`` runs. A zombie does not: a head that crashed under the kernel that
    started it stays a zombie child of that kernel, and connecting to it would hang."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is ours
        return False
    return True


def read_state(settings: Settings) -> ClusterInfo | None:
    """The embedded cluster recorded in the state file, if its process is still alive."""
    path = _state_file(settings)
    try:
        info = ClusterInfo(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return info if _pid_alive(info.pid) else None


@contextlib.contextmanager
def _lock(settings: Settings) -> Any:
    """Serialise start/stop across kernels and CLI calls on this machine."""
    settings.home_path.mkdir(parents=True, exist_ok=True)
    with open(settings.home_path / "cluster.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _head_env(settings: Settings) -> dict[str, str]:
    from . import ingress

    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env.update(_ray.WORKER_PRIORITY)
    tuning = {**_ray.REPLICA_LOOP, **_ray.haproxy_load(os.cpu_count() or 1)}
    for name, value in tuning.items():  # unless the user chose otherwise
        env.setdefault(name, value)
    env.update(ingress.environment(settings))
    env.update(lockdown.head_environment(settings))
    return env


def start_embedded(settings: Settings, log: Any = None) -> ClusterInfo:
    """Start the embedded head unless one is running; return it."""
    with _lock(settings):
        running = read_state(settings)
        if running is not None:
            return running
        home = settings.home_path
        logfile = home / "ray-head.log"
        cmd = [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
            f"--port={settings.ray_port}", *lockdown.head_args(settings),
            # Ray's other fixed default (52365), moved next to the GCS port so two
            # embedded clusters on one machine do not collide.
            f"--dashboard-agent-listen-port={int(settings.ray_port) + 2}",
            "--include-dashboard=false", "--disable-usage-stats",
            f"--num-cpus={settings.cpus():g}",
        ]  # fmt: skip
        if settings.object_store_mb:  # Ray wants bytes; small machines (Binder) set this
            cmd.append(f"--object-store-memory={int(float(settings.object_store_mb) * 2**20)}")
        for attempt in range(1, START_ATTEMPTS + 1):
            started = time.time()
            proc = _launch(cmd, logfile, settings)
            if proc is not None:
                break
            text = logfile.read_text(errors="replace")
            if attempt == START_ATTEMPTS or not any(s in text for s in _SLOW_START):
                tail = "\n".join(text.strip().splitlines()[-5:])
                raise ClusterError(
                    f"The embedded Ray head failed to start (port {settings.ray_port} in "
                    f"use? set JD_RAY_PORT). Last log lines:\n{tail}"
                )
            _log.warning("the Ray head's agents started too slowly; starting it again")
        assert proc is not None
        info = ClusterInfo(
            address=f"127.0.0.1:{settings.ray_port}", embedded=True, pid=proc.pid,
            http_host=settings.http_host, http_port=settings.http_port_int,
            started_at=started, proxy_location=settings.proxy_location,
        )  # fmt: skip
        _state_file(settings).write_text(json.dumps(asdict(info)))
        return info


# On a busy machine Ray's raylet may give up waiting for its dashboard agent (a fixed
# wait, no setting changes it) and take the head down: seen at load averages above ~10,
# where 5 of 15 starts failed so, while the next start worked. Start again, twice at most.
START_ATTEMPTS = 3
_SLOW_START = ("timed out during startup", "WaitForDashboardAgentPorts", "metrics_agent_port")


def _launch(cmd: list[str], logfile: Path, settings: Settings) -> subprocess.Popen[bytes] | None:
    """Start ``ray start --head --block``; the process once it runs, None if it died."""
    with open(logfile, "w") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=_head_env(settings), start_new_session=True,
        )  # fmt: skip
    deadline = time.time() + float(settings.start_timeout)
    while time.time() < deadline:
        if "Ray runtime started" in logfile.read_text(errors="replace"):
            return proc
        if proc.poll() is not None:
            _terminate(proc.pid)  # what the head started before failing must not linger
            return None
        time.sleep(0.2)
    _terminate(proc.pid)
    raise ClusterError(
        f"The embedded Ray head did not start within {settings.start_timeout} s; see {logfile}."
    )


def session_pids(sid: int) -> list[int]:
    """Live processes of session ``sid``: the head and every Ray process it spawned."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields: state ppid pgrp session
            pids.append(int(entry))
    return pids


def _terminate(pid: int, grace: float = 3.0, timeout: float = 15.0) -> None:
    """End the ``ray start --block`` session: SIGTERM, then SIGKILL what outlives ``grace``.

    Every deployment ends with the cluster anyway, and Ray's own shutdown of a session
    takes tens of seconds, so a short grace is all that is useful.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.time() + grace
    while time.time() < deadline and session_pids(pid):
        time.sleep(0.2)
    deadline = time.time() + timeout
    while time.time() < deadline:
        leftovers = session_pids(pid)
        if not leftovers:
            break
        for leftover in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)


def stop_embedded(settings: Settings | None = None) -> bool:
    """Stop the embedded cluster (all deployments on it end). False if none was running."""
    settings = settings or Settings.from_env()
    disconnect()
    with _lock(settings):
        info = read_state(settings)
        _state_file(settings).unlink(missing_ok=True)
        if info is None or info.pid is None:
            return False
        _terminate(info.pid)
        return True


def forget_state(settings: Settings) -> None:
    """Drop the control plane's durable state: deployments, archives, payload logs."""
    import shutil

    shutil.rmtree(settings.state_path.parent, ignore_errors=True)
    shutil.rmtree(settings.home_path / "payloads", ignore_errors=True)


def base_url(info: ClusterInfo, settings: Settings) -> str:
    """Where clients reach the endpoints of the cluster ``info``."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if info.http_host in ("0.0.0.0", "") else info.http_host
    scheme = tls.scheme(settings) if info.embedded else "http"  # JD_TLS_*: embedded only
    return f"{scheme}://{host}:{info.http_port}"


_connected: ClusterInfo | None = None


def connect(address: str | None = None, settings: Settings | None = None) -> ClusterInfo:
    """Connect this process to the cluster (starting the embedded one if needed)."""
    global _connected
    settings = settings or Settings.from_env()
    target = address or settings.ray_address
    if _connected is not None and (not target or target == _connected.address):
        return _connected
    import ray

    _ray.check_version()
    if ray.is_initialized():
        ray.shutdown()
    if target:
        lockdown.forget_token()
        info = ClusterInfo(
            address=target, embedded=False, http_host=settings.http_host,
            http_port=settings.http_port_int, proxy_location=settings.proxy_location,
        )  # fmt: skip
    else:
        info = start_embedded(settings)
        lockdown.use_token(settings)
    try:
        ray.init(
            address=info.address, namespace=_ray.NAMESPACE, log_to_driver=False,
            logging_level=logging.ERROR, configure_logging=False,
        )  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(
            f"Cannot connect to the Ray cluster at {info.address}: {exc}. Check RAY_ADDRESS, "
            "or unset it to use the embedded cluster."
        ) from None
    _start_serve(info)
    _connected = info
    return info


def _start_serve(info: ClusterInfo) -> None:
    from ray import serve

    try:
        serve.start(
            proxy_location=info.proxy_location,
            http_options={"host": info.http_host, "port": info.http_port},
            logging_config={"enable_access_log": False, "log_level": "WARNING"},
        )
    except Exception as exc:  # Serve raises several types for a busy port or bad options
        raise ClusterError(f"Ray Serve could not start on port {info.http_port}: {exc}") from None


def disconnect() -> None:
    """Drop this process's connection to Ray (the cluster keeps running)."""
    global _connected
    _connected = None
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()


def current() -> ClusterInfo | None:
    return _connected
