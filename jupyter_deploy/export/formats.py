"""Export formats by name: what ``Deployment.export`` and ``jupyter-deploy export`` call.

``onnx`` writes a graph with its parity report (:mod:`.onnx`); ``bento`` writes the Bento
archive itself, which ``bentoml import`` and ``bentoml serve`` take without jupyter_deploy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ExportError


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


FORMATS: dict[str, Callable[..., Any]] = {"onnx": _onnx, "bento": _bento}


def export(bento_tag: str, fmt: str, path: str | Path, **options: Any) -> Any:
    """Export Bento ``bento_tag`` as ``fmt`` to ``path``: a ParityReport (onnx) or a path."""
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}; choose one of {sorted(FORMATS)}.")
    return FORMATS[fmt](bento_tag, path, **options)
