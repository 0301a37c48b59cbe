"""One version of a Bento loaded inside a replica, ready to answer.

A replica holds one :class:`LoadedVersion` at a time and swaps it for another when the
deployment's target version changes (:mod:`jupyter_deploy.replica`), so everything that
depends on the version (the runtime, the model, the static routes, the response headers)
lives here, built off the serving path and replaced in one assignment.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..build.reference import REFERENCE_FILE
from .openapi import document
from .warning_filters import compact as compact_warning_filters

_DOCS_HTML = """<!doctype html><html><head><title>{name} API</title></head><body>
<h1>{name} v{version}</h1><p>OpenAPI document: <a href="docs.json">docs.json</a>.
Routes: POST predict{proba}, explain, feedback; GET metrics, schema.json, metadata; readyz and livez
(no key). The others need <code>Authorization: Bearer &lt;key&gt;</code> with the route's scope
(predict and explain, feedback, or metrics for metrics and docs) unless auth is off.</p>
</body></html>"""


def bento_cache_root() -> Path:
    home = os.environ.get("BENTOML_HOME") or str(Path.home() / "bentoml")
    return Path(home) / "jupyter_deploy" / "bentos"


def local_bento(tag: str, fetch: Callable[[str], bytes | None]) -> Path:
    """Path of the unpacked Bento ``tag`` on this node; ``fetch(tag)`` gives its archive."""
    name, version = tag.split(":")
    target = bento_cache_root() / name / version
    if (target / "bento.yaml").exists():
        return target
    data = fetch(tag)
    if data is None:
        raise RuntimeError(f"Bento {tag} is not in the cluster registry; deploy it again.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{version}-"))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        tar.extractall(tmp, filter="data")
    try:
        tmp.rename(target)  # atomic: replicas on one node may unpack at the same time
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_runtime_module(bento_dir: Path, key: str) -> ModuleType:
    """Import the Bento's own ``src/jd_runtime.py`` under a name unique to this Bento."""
    spec = importlib.util.spec_from_file_location(
        f"jd_runtime_{key}", bento_dir / "src" / "jd_runtime.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


@dataclass
class LoadedVersion:
    """A Bento version in memory: its runtime, static routes and response headers."""

    name: str
    version: int
    bento_tag: str
    runtime: Any
    input_error: type[Exception]
    dumps: Callable[[Any], bytes]
    headers: dict[str, str]
    get_routes: dict[str, tuple[bytes, str]]
    module_name: str
    bento_dir: Path
    # The deploy-time profile of the inputs and predictions, for drift (None: no sample).
    reference: dict[str, Any] | None

    @classmethod
    def load(
        cls,
        name: str,
        version: int,
        bento_tag: str,
        max_batch_rows: int,
        fetch: Callable[[str], bytes | None],
        monitoring: bool = False,
        auth: bool = True,
    ) -> LoadedVersion:
        """Unpack (once per node) and import Bento ``bento_tag`` as ``version`` of ``name``."""
        import yaml

        bento_dir = local_bento(bento_tag, fetch)
        bento = yaml.safe_load((bento_dir / "bento.yaml").read_text())
        model_name, model_version = bento["models"][0]["tag"].split(":")
        rt = load_runtime_module(bento_dir, f"{name}_{version}_{model_version}")
        model_dir = bento_dir / "models" / model_name / model_version
        runtime = rt.ModelRuntime.from_dir(model_dir, max_batch_rows)
        if hasattr(runtime, "serve_arrays"):  # a Bento built before it had none
            runtime.serve_arrays()
        reference_file = model_dir / REFERENCE_FILE
        reference = json.loads(reference_file.read_text()) if reference_file.exists() else None
        openapi = document(name, version, runtime.schema.to_dict(), runtime.methods,
                           max_batch_rows, monitoring, auth)  # fmt: skip
        proba = ", predict_proba" if "predict_proba" in runtime.methods else ""
        metadata = {
            "name": name,
            "version": version,
            "bento_tag": bento_tag,
            "methods": runtime.methods,
            "input_schema": runtime.schema.to_dict(),
        }
        routes = {  # readyz, livez and healthz answer without a key (replica/app.py)
            "/schema.json": ((bento_dir / "apis" / "schema.json").read_bytes(), "application/json"),
            "/docs.json": (json.dumps(openapi).encode(), "application/json"),
            "/docs": (
                _DOCS_HTML.format(name=name, version=version, proba=proba).encode(),
                "text/html",
            ),
            "/metadata": (json.dumps(metadata).encode(), "application/json"),
        }
        # Its imports are done (the runtime's, the model's): the process's warning filters,
        # which a forest's predict pays for per tree, made few (warning_filters.py).
        compact_warning_filters()
        return cls(
            name=name,
            version=version,
            bento_tag=bento_tag,
            runtime=runtime,
            input_error=rt.InputError,
            dumps=rt.dumps,
            headers={"x-model-version": str(version)},
            get_routes=routes,
            module_name=rt.__name__,
            bento_dir=bento_dir,
            reference=reference,
        )

    def unload(self) -> None:
        """Drop the runtime module so the old model can be garbage-collected."""
        sys.modules.pop(self.module_name, None)
        sys.modules.pop(f"{self.module_name}_models", None)  # its model loaders
