"""Shadow traffic: a copy of a request answered by another version after the caller's reply.

The caller's answer never waits for it: the shadow call is scheduled once the answer is
made, runs the shadow version's own validation and model in a thread (so it never holds
the event loop), and whatever it does, fails or raises ends here. Its answer is written to
the payload log under the caller's request id, marked ``shadow``, and its agreement with
the answer the caller got is counted for :meth:`Deployment.traffic`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import numpy as np

from .loaded import LoadedVersion
from .telemetry import Telemetry

_log = logging.getLogger("ray.serve")


def _labels(method: str, out: Any) -> Any:
    """What two versions' answers agree on: the label (argmax for probabilities)."""
    arr = np.asarray(out)
    return arr.argmax(axis=1) if method == "predict_proba" and arr.ndim == 2 else arr


async def shadow_call(
    state: LoadedVersion,
    method: str,
    body: bytes,
    answered: Any,
    request_id: str,
    telemetry: Telemetry | None,
) -> None:
    """Answer ``body`` with ``state`` for the record only; never raises."""
    started = time.perf_counter()
    rows, agree, status, response = 0, 0, 200, b""
    try:
        runtime = state.runtime
        x = runtime.to_model_input(runtime.instances_from_body(body))
        rows = len(x)
        out = await asyncio.to_thread(runtime.run, method, x)
        answer = runtime.answer(method, out)
        answer["request_id"] = request_id
        response = state.dumps(answer)
        mine, theirs = _labels(method, out), _labels(method, answered)
        numeric = mine.dtype.kind in "biuf" and theirs.dtype.kind in "biuf"
        agree = int(np.sum(np.isclose(mine, theirs) if numeric else mine == theirs))
    except state.input_error as err:
        status, response = err.status, json.dumps({"error": str(err)}).encode()  # type: ignore[attr-defined]
    except Exception as exc:  # a broken shadow is the point of testing it in the shadow
        status = 500
        response = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
        _log.warning("shadow v%s failed: %s", state.version, exc)
    if telemetry is None:
        return
    try:
        telemetry.recorder.shadow(state.version, rows, agree, status >= 400)
        latency_ms = (time.perf_counter() - started) * 1000
        if telemetry.payloads is not None:
            telemetry.payloads.log(request_id, state.version, method, status, latency_ms, rows,
                                   body, response, shadow=True)  # fmt: skip
    except Exception:
        _log.warning("could not record a shadow answer", exc_info=True)
