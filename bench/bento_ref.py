"""``bentoml serve`` of a Bento: the reference every serving figure is divided by.

When ``jupyter_deploy`` is available the harness serves the very Bento that ``deploy``
built (its tag, from the default Bento store). Without it, ``build_reference_bento``
builds an equivalent Bento (same estimator, same JSON in and out) into a private
``BENTOML_HOME`` so the harness never writes to the user's Bento store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx


def stop_group(proc: subprocess.Popen[Any] | None) -> None:
    """Stop a server started in a session of its own, with its workers: TERM, then KILL."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# The service of the stand-in Bento: same route and payloads as the project's endpoint.
_SERVICE_SOURCE = """\
import bentoml
import numpy as np


@bentoml.service(workers=1)
class BenchIris:
    model_ref = bentoml.models.BentoModel("bench_iris:latest")

    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(self.model_ref)

    @bentoml.api
    def predict(self, instances: list[list[float]]) -> dict:
        return {"predictions": self.model.predict(np.asarray(instances)).tolist()}
"""


def bento_env(home: Path | None) -> dict[str, str]:
    """Environment for bentoml: a private store if ``home`` is given, no telemetry."""
    env = {**os.environ, "BENTOML_DO_NOT_TRACK": "true"}
    if home is not None:
        env["BENTOML_HOME"] = str(home)
    return env


def build_reference_bento(estimator: Any, workdir: Path) -> tuple[str, Path, float]:
    """Build the stand-in Bento in a subprocess; return (tag, BENTOML_HOME, seconds).

    A subprocess because bentoml reads ``BENTOML_HOME`` once at import, and the harness
    must not import bentoml with the user's store configured.
    """
    import pickle

    home = workdir / "bentoml_home"
    ctx = workdir / "bento_src"
    ctx.mkdir(parents=True, exist_ok=True)
    (ctx / "service.py").write_text(_SERVICE_SOURCE)
    (workdir / "estimator.pkl").write_bytes(pickle.dumps(estimator))
    script = (
        "import pickle, sys, bentoml\n"
        f"est = pickle.loads(open({str(workdir / 'estimator.pkl')!r}, 'rb').read())\n"
        "bentoml.sklearn.save_model('bench_iris', est)\n"
        f"b = bentoml.bentos.build('service:BenchIris', name='bench_iris_svc', "
        f"build_ctx={str(ctx)!r}, python={{'packages': ['scikit-learn', 'numpy']}})\n"
        "print('TAG', b.tag)\n"
    )
    began = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=bento_env(home),
        capture_output=True,
        text=True,
        check=True,
    )
    tag = next(x.split()[1] for x in out.stdout.splitlines() if x.startswith("TAG "))
    return tag, home, time.monotonic() - began


@dataclass
class BentoServer:
    """A ``bentoml serve <tag>`` child process on 127.0.0.1."""

    tag: str
    home: Path | None
    port: int = int(os.environ.get("JD_BENCH_BENTOML_PORT", "8210"))
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    # BentoML config overrides, e.g. {"services": {name: {"workers": 2}}}.
    config_overrides: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/predict"

    def start(self, timeout_s: float = 90.0) -> float:
        """Start serving; return seconds until ``/readyz`` answered 200."""
        cmd = [
            str(Path(sys.executable).parent / "bentoml"),
            "serve",
            self.tag,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        log = self.log_path.open("w") if self.log_path else subprocess.DEVNULL
        began = time.monotonic()
        # Own session, so stop() can take down bentoml's worker processes with it.
        env = bento_env(self.home)
        if self.config_overrides:
            env["BENTOML_CONFIG_OVERRIDES"] = json.dumps(self.config_overrides)
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        while time.monotonic() - began < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bentoml serve exited; see {self.log_path}")
            try:
                ready = httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2.0)
                if ready.status_code == 200:
                    return time.monotonic() - began
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"bentoml serve not ready after {timeout_s} s")

    def worker_pids(self) -> list[int]:
        """PIDs of the serving processes (for memory figures)."""
        import psutil

        if self.proc is None:
            return []
        return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]

    def stop(self) -> None:
        stop_group(self.proc)
