"""Package a captured model as a standalone Bento.

The model goes into the BentoML model store with its metadata; the Bento holds the
static ``service.py``, the runtime and a small JSON config, and pins the kernel's exact
package versions. A Bento whose inputs have not changed (same model bytes, schema,
requirements and runtime) is reused rather than rebuilt, so redeploying costs no build.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import PackagingError
from ..spec import DeploymentSpec
from .capture import ModelCapture
from .environment import pinned_requirements, python_version

_TEMPLATE_DIR = Path(__file__).parent.parent / "_bento"
# Files copied into the Bento's build context: source name -> name inside the Bento.
_BENTO_FILES = {
    "service.py": "service.py",
    "runtime.py": "jd_runtime.py",
    "models.py": "jd_models.py",
}
FINGERPRINT_LABEL = "jd_fingerprint"


@dataclass(frozen=True)
class BentoRef:
    """A built Bento: its tag, its model's tag and whether an existing one was reused."""

    tag: str
    model_tag: str
    path: str
    reused: bool


def _fingerprint(cap: ModelCapture, spec: DeploymentSpec, pins: list[str]) -> str:
    h = hashlib.sha256(cap.model_bytes)
    h.update(json.dumps(cap.schema.to_dict(), sort_keys=True).encode())
    h.update("\n".join(pins).encode())
    h.update(str(spec.max_batch_rows).encode())
    h.update(",".join(cap.methods).encode())
    h.update(json.dumps(cap.reference, sort_keys=True).encode())
    h.update(json.dumps(cap.serving, sort_keys=True).encode())
    for name, data in sorted(cap.runtime_files.items()):
        h.update(name.encode() + hashlib.sha256(data).digest())
    for src in _BENTO_FILES:
        h.update((_TEMPLATE_DIR / src).read_bytes())
    return h.hexdigest()[:20]


def _find_existing(name: str, fingerprint: str) -> BentoRef | None:
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        bentos = bentoml.bentos.list(name)
    except NotFound:
        return None
    for bento in bentos:
        if bento.info.labels.get(FINGERPRINT_LABEL) == fingerprint:
            return BentoRef(str(bento.tag), str(bento.info.models[0].tag), str(bento.path), True)
    return None


def model_metadata(cap: ModelCapture, pins: list[str]) -> dict[str, Any]:
    """What the model store records about the model, and the summary shows."""
    return {
        "framework": cap.framework,
        "model_class": cap.model_class,
        "methods": cap.methods,
        "runtime": cap.runtime,
        **({"parity": cap.parity} if cap.parity is not None else {}),
        "input_schema": cap.schema.to_dict(),
        "requirements": pins,
        "python": python_version(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "notebook": cap.notebook or "",
        "variable": cap.variable or "",
        "jupyter_deploy": metadata.version("jupyter_deploy"),
    }


def _save_model_files(
    path: str | Path, model_bytes: bytes, schema: Any, extra: dict[str, bytes] | None = None
) -> None:
    """Write the pickled model, its schema and ``extra`` files (an ONNX graph and its
    ``serving.json``) where :meth:`ModelRuntime.from_dir` reads them."""
    path = Path(path)
    from .._bento.models import MODEL_FILE
    from .._bento.runtime import SCHEMA_FILE

    (path / MODEL_FILE).write_bytes(model_bytes)
    (path / SCHEMA_FILE).write_text(json.dumps(schema.to_dict(), indent=2))
    for name, data in (extra or {}).items():
        (path / name).write_bytes(data)


def build_bento(cap: ModelCapture, spec: DeploymentSpec) -> BentoRef:
    """Save the model and build its Bento, or return the identical one already built."""
    import bentoml

    from .._bento.models import SERVING_FILE
    from .reference import REFERENCE_FILE

    pins = pinned_requirements(cap.modules)
    fingerprint = _fingerprint(cap, spec, pins)
    existing = _find_existing(spec.name, fingerprint)
    if existing is not None:
        return existing
    meta = model_metadata(cap, pins)
    try:
        with bentoml.models.create(
            f"{spec.name}-model",
            labels={"framework": cap.framework, "deployment": spec.name},
            metadata=meta,
        ) as bento_model:
            files = {**cap.runtime_files, SERVING_FILE: json.dumps(cap.serving).encode()}
            _save_model_files(bento_model.path, cap.model_bytes, cap.schema, files)
            if cap.reference is not None:
                Path(bento_model.path, REFERENCE_FILE).write_text(json.dumps(cap.reference))
        with tempfile.TemporaryDirectory(prefix="jd-bento-") as ctx:
            for src, dst in _BENTO_FILES.items():
                shutil.copyfile(_TEMPLATE_DIR / src, os.path.join(ctx, dst))
            config = {
                "service_name": spec.name,
                "model_tag": str(bento_model.tag),
                "max_batch_rows": spec.max_batch_rows,
                "predict_proba": "predict_proba" in cap.methods,
            }
            Path(ctx, "jd_bento.json").write_text(json.dumps(config, indent=2))
            # BentoML imports the build context's `service` module to read the service's
            # name; a module cached from an earlier build in this process would name the
            # first deployment's service in every later Bento (and `bentoml serve` fails).
            _forget_bento_modules()
            bento = bentoml.bentos.build(
                "service:ModelService",
                name=spec.name,
                build_ctx=ctx,
                models=[str(bento_model.tag)],
                labels={FINGERPRINT_LABEL: fingerprint, "deployment": spec.name},
                description=f"{cap.model_class} deployed by jupyter_deploy as '{spec.name}'.",
                # Pinned from the kernel: no resolver, no network, no seconds lost.
                python={"packages": pins, "lock_packages": False},
                docker={"python_version": python_version()},
            )
    except Exception as exc:  # bentoml raises many types; the user needs one clear line
        raise PackagingError(f"Building the Bento for '{spec.name}' failed: {exc}") from exc
    finally:
        _forget_bento_modules()
    return BentoRef(str(bento.tag), str(bento_model.tag), str(bento.path), False)


def _forget_bento_modules() -> None:
    """Drop the Bento's own modules from the import cache (they live in a temporary folder)."""
    for module in ("service", "jd_runtime", "jd_runtime_models"):
        sys.modules.pop(module, None)
    importlib.invalidate_caches()


def export_archive(tag: str) -> bytes:
    """The Bento as a ``.bento`` archive (what replicas unpack and ``bentoml import`` reads)."""
    import bentoml

    with tempfile.TemporaryDirectory(prefix="jd-export-") as tmp:
        path = bentoml.bentos.export_bento(tag, os.path.join(tmp, "bento.bento"))
        return Path(path).read_bytes()
