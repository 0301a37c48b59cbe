"""What the Deploy panel runs in the notebook's kernel, through small executed snippets.

The panel cannot see kernel objects, so it asks the kernel: :func:`deployable` lists the
variables that can be deployed, :func:`deploy` deploys one through the same
:func:`jupyter_deploy.deploy` as ``%deploy``. Both print one JSON line framed by
:data:`MARK` so the panel can find it among other output; errors are data, not
tracebacks.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ..errors import JupyterDeployError
from ..spec import Autoscaling

#: Frames the JSON answer in the kernel's stdout.
MARK = "@@jupyter-deploy@@"

# Objects with predict that are never user models: classes and modules.
_SKIP_TYPES = (type, type(sys))


def _emit(payload: dict[str, Any]) -> None:
    print(f"{MARK}{json.dumps(payload, default=str)}{MARK}", flush=True)


def _has_sample_shape(value: Any) -> bool:
    """DataFrames and 2-D arrays can serve as a schema sample."""
    if type(value).__name__ == "DataFrame":
        return True
    return getattr(value, "ndim", None) == 2 and not isinstance(value, _SKIP_TYPES)


def deployable(namespace: dict[str, Any]) -> list[dict[str, Any]]:
    """The variables of ``namespace`` that can be deployed (objects with ``predict``).

    Parameters
    ----------
    namespace
        The kernel's user namespace.

    Returns
    -------
    list of dict
        ``{variable, type, has_proba}`` for each model, sorted by variable name.
    """
    from ..build.capture import deployable_variables

    return [
        {
            "variable": var,
            "type": type(namespace[var]).__name__,
            "has_proba": callable(getattr(namespace[var], "predict_proba", None)),
        }
        for var in deployable_variables(namespace)
        if not isinstance(namespace[var], _SKIP_TYPES)
    ]


def samples(namespace: dict[str, Any]) -> list[str]:
    """Variables that can be passed as ``sample`` (DataFrames, 2-D arrays)."""
    return sorted(
        var
        for var, value in namespace.items()
        if not var.startswith("_") and _has_sample_shape(value)
    )


def list_models(namespace: dict[str, Any]) -> None:
    """Print the kernel's deployable models and sample candidates as one framed JSON line."""
    defaults = {"min_replicas": Autoscaling.min_replicas, "max_replicas": Autoscaling.max_replicas}
    _emit({"models": deployable(namespace), "samples": samples(namespace), "defaults": defaults})


def deploy(
    namespace: dict[str, Any],
    variable: str,
    name: str | None = None,
    sample: str | None = None,
    min_replicas: int = Autoscaling.min_replicas,
    max_replicas: int = Autoscaling.max_replicas,
) -> None:
    """Deploy the kernel variable ``variable`` exactly as ``%deploy`` does; print the result.

    The progress display of :func:`jupyter_deploy.deploy` goes to the kernel's output as
    usual (the panel shows it). The framed JSON line is ``{"ok": true, "name", "url",
    "version"}`` or ``{"ok": false, "error", "kind", "status"}``.
    """
    from ..build.capture import resolve
    from ..client import api

    try:
        sample_value = resolve(sample, namespace)[0] if sample else None
        dep = api.deploy(
            variable,
            name or None,
            sample=sample_value,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            namespace=namespace,
        )
    except JupyterDeployError as exc:
        _emit({"ok": False, "error": str(exc), "kind": type(exc).__name__, "status": exc.status})
        return
    _emit({"ok": True, "name": dep.name, "url": dep.url, "version": dep.version})
