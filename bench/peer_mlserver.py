"""MLServer (Seldon) with its scikit-learn runtime, in a virtual environment of its own.

MLServer 1.7 pins versions that clash with the project's (fastapi, pydantic, protobuf), so
it is never a dependency: the bench run creates ``<out>/mlserver-venv`` with the
interpreter running the bench, installs ``mlserver`` and ``mlserver-sklearn`` plus the
project's exact scikit-learn (the model is a pickle) from PyPI, and reuses the venv on the
next run. Requests use the V2 inference protocol with one input per column and the
``pd`` content type, so the model receives a DataFrame, as ours does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from bento_ref import stop_group

VERSION = "1.7.1"


def ensure_venv(out: Path, log: Any) -> Path:
    """The venv's python, created (a few minutes, from PyPI) if it is not there yet."""
    import sklearn

    venv = out / "mlserver-venv"
    python = venv / "bin" / "python"
    marker = venv / f".ready-{VERSION}-{sklearn.__version__}-uvloop021"
    if marker.exists():
        return python
    log(f"creating MLServer {VERSION}'s venv in {venv} (reused next time)")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"mlserver=={VERSION}",
         f"mlserver-sklearn=={VERSION}", f"scikit-learn=={sklearn.__version__}",
         # uvloop 0.22 has no event loop in MLServer 1.7's worker processes: they die.
         "uvloop<0.22"],
        check=True,
    )  # fmt: skip
    marker.touch()
    return python


def v2_body(records: list[dict[str, float]]) -> str:
    """The V2 inference request for ``records``: one FP64 input per column, as a frame."""
    names = list(records[0])
    inputs = [
        {"name": n, "shape": [len(records)], "datatype": "FP64", "data": [r[n] for r in records]}
        for n in names
    ]
    return json.dumps({"inputs": inputs, "parameters": {"content_type": "pd"}})


def predictions(answer: dict[str, Any]) -> list[int]:
    return [int(v) for v in answer["outputs"][0]["data"]]


class MLServer:
    """``mlserver start`` of a folder holding one model (``joblib`` file + settings)."""

    def __init__(self, python: Path, workdir: Path, name: str, model: Any, port: int) -> None:
        import joblib

        self.python, self.name, self.port = python, name, port
        self.dir = workdir / f"mlserver-{name}"
        (self.dir / name).mkdir(parents=True, exist_ok=True)
        joblib.dump(model, self.dir / name / "model.joblib")
        (self.dir / name / "model-settings.json").write_text(json.dumps({
            "name": name, "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib"},
        }))  # fmt: skip
        # Two inference workers (MLServer's parallel_workers): both cores, as every peer.
        (self.dir / "settings.json").write_text(json.dumps({
            "host": "127.0.0.1", "http_port": port, "grpc_port": port + 1000,
            "metrics_port": port + 2000, "parallel_workers": 2, "metrics_endpoint": None,
        }))  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/models/{self.name}/infer"

    def start(self, timeout_s: float = 120.0) -> float:
        began = time.monotonic()
        mlserver = self.python.parent / "mlserver"
        log = (self.dir / "server.log").open("w")
        env = {**os.environ, "PATH": f"{self.python.parent}:{os.environ.get('PATH', '')}"}
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen([str(mlserver), "start", str(self.dir)], env=env,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
        ready = f"http://127.0.0.1:{self.port}/v2/models/{self.name}/ready"
        while time.monotonic() - began < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlserver exited; see {self.dir / 'server.log'}")
            try:
                if httpx.get(ready, timeout=2.0).status_code == 200:
                    return time.monotonic() - began
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"mlserver not ready after {timeout_s} s")

    def stop(self) -> None:
        stop_group(self.proc)
