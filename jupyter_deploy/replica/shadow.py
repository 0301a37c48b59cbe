"""Shadow traffic: copies of requests answered by another version after the callers' replies.

A caller's answer never waits for its copy: the copy joins a queue once the answer is
made, and the queue is answered every :data:`FLUSH_S` in one go, in a thread (never on
the event loop): each copy goes through the shadow version's own validation, the valid
ones through one model call (:func:`~.batcher.run_by_version`, as callers' batches do),
so a shadow at rate 1 costs one model call per flush rather than one per request. Whatever the
shadow does, fails or raises ends here. Its answers are written to the payload log under
the callers' request ids, marked ``shadow``, and their agreement with the answers the
callers got is counted for :meth:`Deployment.traffic`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .batcher import run_by_version
from .loaded import LoadedVersion
from .telemetry import Telemetry

FLUSH_S = 0.05
MAX_QUEUED = 10_000  # copies beyond this are dropped (and counted failed): callers first
_log = logging.getLogger("ray.serve")


def _labels(method: str, out: Any) -> Any:
    """What two versions' answers agree on: the label (argmax for probabilities)."""
    arr = np.asarray(out)
    return arr.argmax(axis=1) if method == "predict_proba" and arr.ndim == 2 else arr


@dataclass
class _Copy:
    state: LoadedVersion
    method: str
    body: bytes
    answered: Any
    request_id: str
    queued: float
    rows: int = 0
    agree: int = 0
    status: int = 200
    response: bytes = b""


def _fail(copy: _Copy, exc: BaseException) -> None:
    if isinstance(exc, copy.state.input_error):
        copy.status = exc.status  # type: ignore[attr-defined]
        copy.response = json.dumps({"error": str(exc)}).encode()
        return
    copy.status = 500  # a broken shadow is the point of testing it in the shadow
    copy.response = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
    _log.warning("shadow v%s failed: %s", copy.state.version, exc)


def _finish(copy: _Copy, out: Any) -> None:
    runtime = copy.state.runtime
    answer = runtime.answer(copy.method, out)
    answer["request_id"] = copy.request_id
    copy.response = copy.state.dumps(answer)
    mine, theirs = _labels(copy.method, out), _labels(copy.method, copy.answered)
    numeric = mine.dtype.kind in "biuf" and theirs.dtype.kind in "biuf"
    copy.agree = int(np.sum(np.isclose(mine, theirs) if numeric else mine == theirs))


def answer_all(copies: list[_Copy]) -> None:
    """Answer every copy (in a thread): validate each, one model call per version and method."""
    valid: list[tuple[_Copy, Any]] = []
    for copy in copies:
        try:
            runtime = copy.state.runtime
            x = runtime.to_model_input(runtime.instances_from_body(copy.body))
            copy.rows = len(x)
            valid.append((copy, x))
        except Exception as exc:
            _fail(copy, exc)
    outs = run_by_version([(c.state, c.method, x) for c, x in valid])
    for (copy, _), out in zip(valid, outs, strict=True):
        try:
            if isinstance(out, BaseException):
                raise out
            _finish(copy, out)
        except Exception as exc:
            _fail(copy, exc)


class ShadowQueue:
    """One replica's shadow copies, answered together every :data:`FLUSH_S`."""

    def __init__(self, telemetry: Telemetry | None) -> None:
        self._telemetry = telemetry
        self._copies: list[_Copy] = []
        self._task: asyncio.Task[None] | None = None

    def put(self, state: LoadedVersion, method: str, body: bytes, answered: Any,
            request_id: str) -> None:  # fmt: skip
        """Queue a copy of a request the caller has its answer to (never raises)."""
        copy = _Copy(state, method, body, answered, request_id, time.perf_counter())
        if len(self._copies) >= MAX_QUEUED:
            copy.status = 503
            self._record([copy])
            return
        self._copies.append(copy)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        while self._copies:
            await asyncio.sleep(FLUSH_S)
            copies, self._copies = self._copies, []
            try:
                await asyncio.to_thread(answer_all, copies)
            except Exception:
                _log.warning("shadow copies were lost", exc_info=True)
                continue
            self._record(copies)

    def _record(self, copies: list[_Copy]) -> None:
        """Counts and payload log, on the event loop (where the recorder flushes)."""
        tel = self._telemetry
        if tel is None:
            return
        now = time.perf_counter()
        try:
            for c in copies:
                tel.recorder.shadow(c.state.version, c.rows, c.agree, c.status >= 400)
                if tel.payloads is not None:
                    tel.payloads.log(c.request_id, c.state.version, c.method, c.status,
                                     (now - c.queued) * 1000, c.rows, c.body, c.response,
                                     shadow=True)  # fmt: skip
        except Exception:
            _log.warning("could not record shadow answers", exc_info=True)
