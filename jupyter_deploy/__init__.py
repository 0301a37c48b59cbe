"""Deploy a model from a Jupyter notebook as a BentoML Bento served on Ray Serve.

Importing this package is cheap: ray, bentoml and scikit-learn are imported only by the
functions that need them, because the Jupyter server imports it at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

__all__ = [
    "Deployment",
    "__version__",
    "deploy",
    "get",
    "list_deployments",
    "load_ipython_extension",
    "rollback",
    "scale",
    "start_cluster",
    "stop_cluster",
    "undeploy",
]

_API = {"deploy", "get", "list_deployments", "rollback", "scale", "start_cluster",
        "stop_cluster", "undeploy"}  # fmt: skip

if TYPE_CHECKING:
    from .client.api import (
        deploy,
        get,
        list_deployments,
        rollback,
        scale,
        start_cluster,
        stop_cluster,
        undeploy,
    )
    from .client.deployment import Deployment


def __getattr__(name: str) -> Any:
    # PEP 562 lazy attributes: `jupyter_deploy.deploy` imports the API on first use only.
    if name in _API:
        from .client import api

        return getattr(api, name)
    if name == "Deployment":
        from .client.deployment import Deployment

        return Deployment
    raise AttributeError(f"module 'jupyter_deploy' has no attribute {name!r}")


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the prebuilt Deploy panel (shipped in the wheel)."""
    return [{"src": "labextension", "dest": "jupyter-deploy"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The server extension behind the panel (REST routes, loaded lazily)."""
    return [{"module": "jupyter_deploy.server"}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_deploy``: register the %deploy magics."""
    from .notebook.magics import DeployMagics

    ipython.register_magics(DeployMagics)
