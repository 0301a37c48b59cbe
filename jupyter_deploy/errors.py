"""One error hierarchy for every front door.

Each error carries the HTTP status the REST layer answers with and a message that says
what went wrong and what to do next. The notebook shows ``str(error)`` on one line, never
a traceback (see :mod:`jupyter_deploy.magics`).
"""

from __future__ import annotations

__all__ = [
    "ClusterError",
    "DeploymentFailedError",
    "DeploymentNotFoundError",
    "DeploymentTimeoutError",
    "GateFailedError",
    "InvalidModelError",
    "InvalidSpecError",
    "JupyterDeployError",
    "PackagingError",
    "ParameterError",
    "PredictionError",
    "RollbackError",
    "UnknownVariableError",
    "UnsafePathError",
]


class JupyterDeployError(Exception):
    """Base class of every error raised by jupyter_deploy."""

    #: HTTP status a REST handler answers with for this error.
    status: int = 500


class InvalidModelError(JupyterDeployError):
    """The object cannot be deployed: no ``predict``, not fitted, not picklable."""

    status = 400


class UnknownVariableError(JupyterDeployError):
    """``%deploy name`` named a variable that the kernel does not have."""

    status = 404


class InvalidSpecError(JupyterDeployError):
    """A deployment option is out of range or malformed (name, replicas, resources)."""

    status = 400


class PackagingError(JupyterDeployError):
    """Saving the model or building the Bento failed."""

    status = 500


class ClusterError(JupyterDeployError):
    """The Ray cluster could not be started, reached or used."""

    status = 503


class DeploymentNotFoundError(JupyterDeployError):
    """No deployment of that name exists in the cluster."""

    status = 404


class RollbackError(JupyterDeployError):
    """There is no earlier version to roll back to."""

    status = 409


class DeploymentFailedError(JupyterDeployError):
    """The new version's replicas failed to start; the previous version keeps serving."""

    status = 502


class DeploymentTimeoutError(JupyterDeployError):
    """The deployment did not become ready in time."""

    status = 504


class PredictionError(JupyterDeployError):
    """The endpoint refused a prediction request; ``status`` is its HTTP answer."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


class ParameterError(InvalidSpecError):
    """A deployment notebook's parameter is wrong (unknown model, missing data, bad gate)."""

    status = 400


class GateFailedError(JupyterDeployError):
    """The candidate failed its quality gate; nothing was deployed, the live version serves."""

    status = 412


class UnsafePathError(JupyterDeployError):
    """A private file or folder (token, sockets, payload log) is someone else's or too open."""

    status = 500
