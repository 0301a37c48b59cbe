"""One error hierarchy for every front door.

Each error carries the HTTP status the REST layer answers with and a message that says
what went wrong and what to do next. The notebook shows ``str(error)`` on one line, never
a traceback (see :mod:`jupyter_deploy.magics`).
"""

from __future__ import annotations

__all__ = [
    "BatchFailedError",
    "BatchInputError",
    "BatchOutputExistsError",
    "BatchSpecError",
    "CanaryRolledBackError",
    "ClusterError",
    "DeploymentFailedError",
    "DeploymentNotFoundError",
    "DeploymentTimeoutError",
    "ExportError",
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


class CanaryRolledBackError(JupyterDeployError):
    """A canary regressed and its controller sent it back to 0 %; the baseline serves."""

    status = 409


class GateFailedError(JupyterDeployError):
    """The candidate failed its quality gate; nothing was deployed, the live version serves."""

    status = 412


class ExportError(JupyterDeployError):
    """The model cannot be exported as asked: a step has no converter, or parity failed."""

    status = 422


class ExplainUnavailable(JupyterDeployError):
    """This deployment's model cannot be explained as deployed (no sample, no probability)."""

    status = 503


class ExplainTimeout(JupyterDeployError):
    """An explanation did not finish within the deployment's ``explain_timeout_s``."""

    status = 503


def to_wire(exc: JupyterDeployError) -> tuple[str, str, int]:
    """What crosses a process boundary (a pipe, JSON): class name, message, status."""
    return type(exc).__name__, str(exc), exc.status


def from_wire(data: tuple[str, str, int | None]) -> JupyterDeployError:
    """The error of :func:`to_wire` rebuilt with its own class.

    An unknown class name gives the base class, with the name kept in the message; a
    status of None gives the class's own.
    """
    name, message, status = data
    cls = globals().get(name)
    if not (isinstance(cls, type) and issubclass(cls, JupyterDeployError)):
        cls, message = JupyterDeployError, f"{name}: {message}"
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.status = cls.status if status is None else status
    return err


class BatchSpecError(InvalidSpecError):
    """A batch job's options are wrong (unknown column to keep, version, method, format)."""

    status = 400


class StreamSpecError(InvalidSpecError):
    """A stream's options are wrong (a password in the URL, a missing password, counts)."""

    status = 400


class BatchInputError(JupyterDeployError):
    """A batch job's input does not exist or cannot be read."""

    status = 404


class BatchOutputExistsError(JupyterDeployError):
    """A batch job's output file exists and ``overwrite`` was not given."""

    status = 409


class BatchFailedError(JupyterDeployError):
    """A batch job stopped (not a bad row: the cluster, the Bento or a file); nothing written."""


class UnsafePathError(JupyterDeployError):
    """A private file or folder (token, sockets, payload log) is someone else's or too open."""

    status = 500
