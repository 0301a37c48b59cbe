"""Runs the panel's cluster operations in a child process, never in the Jupyter server.

Why a process: a Ray driver aborts its whole process when the cluster's GCS stays
unreachable for a minute, so a Ray connection held by the Jupyter server would take the
server down with a stopped cluster. The child holds the connection instead; it is
replaced when the embedded cluster is stopped or restarted, when it dies, or when a call
outlives its deadline. The Jupyter server itself never imports ray.
"""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

from ..errors import ClusterError, JupyterDeployError, from_wire, to_wire


def _serve(conn: Any) -> None:
    """The child's loop: run each requested operation, send back its result or error."""
    from . import operations

    while True:
        try:
            name, args = conn.recv()
        except EOFError:
            return
        try:
            reply: tuple[str, Any] = ("ok", getattr(operations, name)(*args))
        except JupyterDeployError as exc:  # keeps its class on the other side
            reply = ("error", to_wire(exc))
        except Exception as exc:  # anything else still answers, as a 500
            reply = ("error", (type(exc).__name__, str(exc), 500))
        conn.send(reply)


def _cluster_key() -> str:
    """Identity of the cluster a connection would reach now (no Ray involved)."""
    from ..control.cluster import read_state
    from ..settings import Settings

    settings = Settings.from_env()
    if settings.ray_address:
        return settings.ray_address
    state = read_state(settings)
    return f"embedded:{state.pid}" if state else "none"


class Worker:
    """One child process running :mod:`.operations`, one call at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Any = None
        self._key = ""

    def call(self, name: str, *args: Any, timeout: float = 120.0) -> Any:
        """Run ``operations.<name>(*args)`` in the child; blocks (call it from a thread)."""
        with self._lock:
            key = _cluster_key()
            if self._proc is not None and (key != self._key or not self._proc.is_alive()):
                self.stop()
            if self._proc is None:
                self._start()
            self._key = key
            self._conn.send((name, args))
            if not self._conn.poll(timeout):
                self.stop()
                raise ClusterError(
                    f"The cluster did not answer within {timeout:.0f} s; the next request "
                    "reconnects."
                )
            try:
                status, value = self._conn.recv()
            except EOFError:
                self.stop()
                raise ClusterError(
                    "The connection to the cluster was lost; the next request reconnects."
                ) from None
            # The child may have started or replaced the cluster itself: it is connected
            # to that one, so it stays.
            self._key = _cluster_key()
        if status == "error":
            raise from_wire(value)
        return value

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(child,), name="jupyter-deploy-worker", daemon=True
        )
        self._proc.start()
        child.close()
        self._conn = parent

    def stop(self) -> None:
        """End the child (its Ray connection ends with it; the cluster keeps running)."""
        if self._proc is None:
            return
        self._conn.close()
        self._proc.kill()
        self._proc.join(timeout=10)
        self._proc = self._conn = None
