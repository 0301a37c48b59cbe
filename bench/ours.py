"""The "ours" row: the project's own endpoint, driven only through its public API.

Everything that touches ``jupyter_deploy`` lives here, behind small functions, so the rest
of the harness runs (and the other rows are measured) when the package is missing or
incomplete. The API used: ``deploy(model, name=..., sample=...)`` returning a handle with
``url``, ``token``, ``bento_tag`` and ``delete()``; ``POST <url>/predict`` with
``{"instances": [...]}`` answering ``{"predictions": [...]}``; ``stop_cluster()``.
Optional keyword arguments (``progress``, ``min_replicas``, ``monitoring``...) are passed
only when ``deploy``'s signature has them.
"""

from __future__ import annotations

import importlib
import inspect
import json
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from loadgen import finish_wrk, run_wrk, start_wrk, wait_until
from servers import Endpoint, replica_pids

HEAVY_MODULES = ("ray", "bentoml", "sklearn")


def load_api() -> tuple[ModuleType | None, str]:
    """``(jupyter_deploy, "")``, or ``(None, why)`` when it cannot be used yet."""
    try:
        api = importlib.import_module("jupyter_deploy")
        for name in ("deploy", "stop_cluster"):
            getattr(api, name)
    except Exception as exc:  # any failure means: skip the row, say why
        return None, f"jupyter_deploy unavailable ({type(exc).__name__}: {exc})"
    return api, ""


@dataclass
class Deployed:
    """A live deployment of ours, and how long ``deploy`` took to make it answer."""

    handle: Any
    name: str
    call_s: float  # deploy() call, start to return
    first_ok_s: float | None  # deploy() call start until the first 200

    def endpoint(self, label: str = "ours") -> Endpoint:
        return Endpoint(label, f"{self.handle.url}/predict", self.handle.token)


def _supported(fn: Any, wanted: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``wanted`` keyword arguments that ``fn`` accepts."""
    params = inspect.signature(fn).parameters
    return {k: v for k, v in wanted.items() if k in params}


def accepts(api: ModuleType, option: str) -> bool:
    """Whether ``deploy`` takes keyword ``option`` (e.g. ``monitoring``)."""
    return option in inspect.signature(api.deploy).parameters


def deploy(
    api: ModuleType, estimator: Any, name: str, sample: Any, probe: str, **options: Any
) -> Deployed:
    """Deploy ``estimator`` as ``name`` and time it until the endpoint answers 200."""
    kwargs = _supported(api.deploy, {"progress": False, **options})
    began = time.monotonic()
    handle = api.deploy(estimator, name=name, sample=sample, **kwargs)
    call_s = time.monotonic() - began
    ok = wait_until(f"{handle.url}/predict", probe, handle.token, 60.0)
    return Deployed(handle, name, call_s, None if ok is None else ok - began)


def redeploy_under_load(
    api: ModuleType,
    current: Deployed,
    variant: Any,
    sample: Any,
    probe: str,
    expect: object,
    load_body: str,
) -> dict[str, Any]:
    """Roll out ``variant`` under the same name while wrk sends traffic (c=4).

    The load starts a second before the ``deploy`` call and stops a second after the new
    version answered, so every request of the rollout is counted. Figures: seconds from
    the call until the new version answers the probe, and wrk's failed requests (target 0).
    """
    url = f"{current.handle.url}/predict"
    proc, script = start_wrk(url, load_body, 4, 600, current.handle.token)
    time.sleep(1.0)
    began = time.monotonic()
    kwargs = _supported(api.deploy, {"progress": False})
    handle = api.deploy(variant, name=current.name, sample=sample, **kwargs)
    call_s = time.monotonic() - began
    new_ok = wait_until(url, probe, handle.token, 60.0, expect)
    time.sleep(1.0)
    load = finish_wrk(proc, script, stop=True)
    current.handle = handle
    return {
        "call_s": call_s,
        "new_version_s": None if new_ok is None else new_ok - began,
        "failed_requests": load.errors,
        "requests": load.requests,
        "max_ms": load.max_ms,
    }


def import_cost(runs: int) -> dict[str, Any]:
    """Median seconds of ``import jupyter_deploy`` in a fresh interpreter, and heavy imports.

    A fresh subprocess each time, because a second import in one process is free. The
    reference is ``import csv`` timed the same way (interpreter noise floor).
    """
    probe = (
        "import sys, time, json as _j\n"
        "t = time.perf_counter()\n"
        "import {mod}\n"
        "dt = time.perf_counter() - t\n"
        "heavy = [m for m in {heavy!r} if m in sys.modules]\n"
        "print('IMPORT', _j.dumps({{'s': dt, 'heavy': heavy}}))\n"
    )

    def once(mod: str) -> dict[str, Any]:
        code = probe.format(mod=mod, heavy=HEAVY_MODULES)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        line = next((x for x in out.stdout.splitlines() if x.startswith("IMPORT ")), None)
        if line is None:
            raise RuntimeError(out.stderr[-2000:])
        return json.loads(line.removeprefix("IMPORT "))

    ours = [once("jupyter_deploy") for _ in range(runs)]
    ref = [once("csv") for _ in range(runs)]
    return {
        "import_s": statistics.median(x["s"] for x in ours),
        "import_s_spread": [min(x["s"] for x in ours), max(x["s"] for x in ours)],
        "reference_import_csv_s": statistics.median(x["s"] for x in ref),
        "heavy_modules_loaded": sorted({m for x in ours for m in x["heavy"]}),
    }


def autoscaling_step(
    endpoint: Endpoint, body: str, app_name: str, seconds: tuple[float, float, float]
) -> dict[str, Any]:
    """Load at c=1, then c=64, then c=1 again; count failures and replicas seen.

    The replica count is sampled from process titles every half second, so scaling up
    and back down is visible without any API of the system under test.
    """
    seen: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen.append(len(replica_pids(app_name)))
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    steps = []
    for conns, secs in zip((1, 64, 1), seconds, strict=True):
        res = run_wrk(endpoint.url, body, conns, secs, endpoint.token)
        steps.append(
            {"connections": conns, "rps": res.rps, "p50_ms": res.p50_ms, "errors": res.errors}
        )
    done.set()
    sampler.join()
    return {
        "steps": steps,
        "errors": sum(s["errors"] for s in steps),
        "replicas_min": min(seen, default=0),
        "replicas_max": max(seen, default=0),
        "replicas_end": seen[-1] if seen else 0,
    }


def cold_deploy(api: ModuleType, estimator: Any, name: str, sample: Any, probe: str) -> Deployed:
    """Stop the project's cluster, then deploy: cluster start + first replica + first 200."""
    api.stop_cluster()
    return deploy(api, estimator, name, sample, probe)
