"""REST routes of the Deploy panel, under ``/jupyter-deploy/api/``.

Each handler is a thin wrapper over :mod:`.operations` (itself over the Python API), run
in a child process (:mod:`.worker`) that holds the Ray connection, waited for from a
thread so the event loop stays free. Every method is ``@tornado.web.authenticated``
(a test fails on any route that is not); non-GET requests are XSRF-checked by
jupyter_server's ``APIHandler``. A :class:`~jupyter_deploy.errors.JupyterDeployError`
becomes ``{"error": message}`` with the status the error carries.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from ..errors import JupyterDeployError
from ..settings import Settings
from .worker import Worker

NAMESPACE = "jupyter-deploy/api"

# One child process runs the operations one at a time (its Ray driver state is global);
# one thread waits for it.
_worker = Worker()
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jupyter-deploy")


def _timeout(operation: str) -> float:
    """Seconds an operation may take: rollouts wait for replicas, starts for the head."""
    settings = Settings.from_env()
    if operation in ("rollback", "promote"):
        return float(settings.deploy_timeout) + 60
    if operation == "start_cluster":
        return float(settings.start_timeout) + 60
    return 120.0


class _Base(APIHandler):
    """Runs an operation off the event loop and answers JSON, errors included."""

    async def _answer(self, operation: str, *args: Any) -> None:
        loop = asyncio.get_running_loop()

        def run() -> Any:
            return _worker.call(operation, *args, timeout=_timeout(operation))

        try:
            result = await loop.run_in_executor(_executor, run)
        except JupyterDeployError as exc:
            self._error(exc.status, str(exc))
            return
        except Exception as exc:  # an unexpected failure still answers JSON, logged in full
            self.log.exception("jupyter-deploy: %s failed", operation)
            self._error(500, f"{type(exc).__name__}: {exc}")
            return
        self.finish(json.dumps(result, default=str))

    def _error(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish(json.dumps({"error": message}))

    def _body(self) -> dict[str, Any]:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise tornado.web.HTTPError(400, "The request body is not JSON.") from None
        if not isinstance(body, dict):
            raise tornado.web.HTTPError(400, "The request body must be a JSON object.")
        return body

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # HTTPErrors raised before _answer (auth, XSRF, bad body) answer JSON too.
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message}))


class ClusterHandler(_Base):
    """``GET``: is a cluster running. ``POST``: start the embedded one."""

    @tornado.web.authenticated
    async def get(self) -> None:
        await self._answer("cluster_status")

    @tornado.web.authenticated
    async def post(self) -> None:
        await self._answer("start_cluster")


class DeploymentsHandler(_Base):
    """``GET``: every deployment with its live request rate and p95 latency."""

    @tornado.web.authenticated
    async def get(self) -> None:
        await self._answer("list_deployments")


class DeploymentHandler(_Base):
    """``GET``: one deployment. ``DELETE``: stop serving it."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        await self._answer("deployment", name)

    @tornado.web.authenticated
    async def delete(self, name: str) -> None:
        await self._answer("delete", name)


def _replicas(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise tornado.web.HTTPError(400, f"'{key}' must be an integer.")
    return value


class ScaleHandler(_Base):
    """``POST {"min_replicas": 1, "max_replicas": 4}``: new replica range."""

    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        body = self._body()
        low, high = _replicas(body, "min_replicas"), _replicas(body, "max_replicas")
        await self._answer("scale", name, low, high)


class RollbackHandler(_Base):
    """``POST``: serve the previous version again."""

    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        await self._answer("rollback", name)


class PromoteHandler(_Base):
    """``POST``: all traffic to the newest version (ends a split or a canary)."""

    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        await self._answer("promote", name)


class MetricsHandler(_Base):
    """``GET ?window=60``: traffic, latency and errors over a window."""

    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        try:
            window = int(self.get_argument("window", "60"))
        except ValueError:
            raise tornado.web.HTTPError(400, "'window' must be a number of seconds.") from None
        if not 1 <= window <= 3600:
            raise tornado.web.HTTPError(400, "'window' must be between 1 and 3600 seconds.")
        await self._answer("metrics", name, window)


_NAME = r"(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)"
ROUTES: list[tuple[str, type[_Base]]] = [
    ("cluster", ClusterHandler),
    ("deployments", DeploymentsHandler),
    (f"deployments/{_NAME}", DeploymentHandler),
    (f"deployments/{_NAME}/scale", ScaleHandler),
    (f"deployments/{_NAME}/rollback", RollbackHandler),
    (f"deployments/{_NAME}/promote", PromoteHandler),
    (f"deployments/{_NAME}/metrics", MetricsHandler),
]


def setup_handlers(web_app: Any) -> None:
    """Register every route under ``<base_url>jupyter-deploy/api/``."""
    base = url_path_join(web_app.settings["base_url"], NAMESPACE)
    web_app.add_handlers(".*$", [(url_path_join(base, path), h) for path, h in ROUTES])
