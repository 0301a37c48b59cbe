"""Export formats by name: what ``Deployment.export`` and ``jupyter-deploy export`` call.

``onnx`` writes a graph with its parity report (:mod:`.onnx`); ``bento`` writes the Bento
archive itself, which ``bentoml import`` and ``bentoml serve`` take without jupyter_deploy.
``docker`` writes a container build context (:mod:`.container`) and ``kuberay`` a
``RayService`` manifest (:mod:`.kuberay`); those two run the deployment, not only its
model, so they take the deployment's desired state (a rollout
:class:`~jupyter_deploy.rollout.target.Target`) as well as its Bento.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ExportError
from ..rollout.target import Target


@dataclass(frozen=True)
class Format:
    """One export format: how to write it, and whether it needs the deployment's state."""

    write: Callable[..., Any]  # (bento_tag or Target, path, **options) -> result
    needs_target: bool
    help: str


def export_bento(bento_tag: str, path: str | Path) -> str:
    """Write the Bento ``bento_tag`` as an archive at ``path``; return the path written."""
    import bentoml

    target = Path(path)
    if target.exists():
        raise ExportError(f"{target} exists; remove it or choose another path.")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        return str(bentoml.bentos.export_bento(bento_tag, str(target)))
    except Exception as exc:  # bentoml raises many types; the user needs one line
        target.unlink(missing_ok=True)
        raise ExportError(f"Exporting Bento {bento_tag} failed: {exc}") from None


def _onnx(bento_tag: str, path: str | Path, **options: Any) -> Any:
    from .onnx import export_onnx

    return export_onnx(bento_tag, path, **options)


def _bento(bento_tag: str, path: str | Path, **options: Any) -> Any:
    if options:
        raise ExportError(f"--format bento takes no options, got {sorted(options)}.")
    return export_bento(bento_tag, path)


def _docker(target: Target, path: str | Path, *, base_image: str | None = None) -> str:
    from .container import export_docker

    return export_docker(target, path, base_image)


def _kuberay(
    target: Target, path: str | Path, *, image: str | None = None, secret: str | None = None
) -> str:
    from .kuberay import export_kuberay

    return export_kuberay(target, path, image, secret)


FORMATS: dict[str, Format] = {
    "onnx": Format(_onnx, False, "an ONNX graph with its parity report (churn.onnx)"),
    "bento": Format(_bento, False, "the Bento archive (churn.bento)"),
    "docker": Format(_docker, True, "a container build context folder (build/churn)"),
    "kuberay": Format(_kuberay, True, "a KubeRay RayService manifest (churn.yaml)"),
}


def export(
    bento_tag: str, fmt: str, path: str | Path, target: Target | None = None, **options: Any
) -> Any:
    """Export Bento ``bento_tag`` as ``fmt`` to ``path``: a ParityReport (onnx) or a path.

    ``target`` is the deployment's desired state for that Bento; ``docker`` and
    ``kuberay`` need it (``Deployment.export`` passes it).
    """
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}; choose one of {sorted(FORMATS)}.")
    form = FORMATS[fmt]
    if not form.needs_target:
        return form.write(bento_tag, path, **options)
    if target is None or target.bento_tag != bento_tag:
        raise ExportError(f"--format {fmt} exports a deployment: use Deployment.export().")
    try:
        inspect.signature(form.write).bind(target, path, **options)
    except TypeError:  # an option this format does not take
        raise ExportError(f"--format {fmt} does not take {sorted(options)}.") from None
    return form.write(target, path, **options)
