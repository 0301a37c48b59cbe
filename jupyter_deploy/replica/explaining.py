"""The replica's ``POST /explain`` route: contributions per input column, off the loop.

Explanations run in one thread per replica (:data:`THREADS`), never on the event loop
that answers ``/predict``, and at most :data:`MAX_WAITING` wait for it; more get 503
at once. That thread still shares the replica's interpreter (the GIL) and cores with the
predict path: measured, two connections of back-to-back forest explanations cut a
replica's c=32 predict throughput to a third. So while the replica is serving
predictions, explanations get at most :data:`SHARE` of its time: after one that took
``t``, the next waits until ``t * (1 / SHARE - 1)`` has passed. An idle replica
explains back to back.

The same thread explains a few rows of live predict traffic for global importance
(:mod:`.sampling`) as *spare* work: only when no caller's explanation waits, within its
own :data:`SPARE_SHARE` and the quarter above; a batch that does not fit is dropped.

Each request has ``explain_timeout_s`` from its arrival: past it the caller gets 503
with the reason (a sampled explanation stops at its next check; an exact one is
milliseconds). The explainer of a version is built on its first explanation (importing
shap and reading the trees), not when the version loads, so deploys pay nothing for it.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import ExplainTimeout, ExplainUnavailable
from ..explain.explainer import Explainer
from ..explain.records import Explanation
from .loaded import LoadedVersion
from .router import STICKY_HEADER, Routing

THREADS = 1
CHUNK_ROWS = 256  # rows explained between two looks at the deadline
SHARE = 0.25  # of a replica's time for explanations while it serves predictions
SPARE_SHARE = 0.05  # of a replica's time for explaining live traffic (global importance)
SPARE_S = 1.0  # longest a spare batch may take
MAX_WAITING = 8
KEEP = 4  # explainers kept (versions of a split, and the one before a switch)
_log = logging.getLogger("ray.serve")


def _freeze_what_was_built() -> None:
    """Leave a new explainer out of the GC's full collections, as Serve does the rest.

    Serve collects and freezes the GC once a replica has started: what it had imported by
    then is never scanned again. An explainer is built later, on first use (in monitored
    replicas by live importance, within seconds), and the first build imports SHAP, numba
    and more of scikit-learn: ~38k objects that every full collection then scanned, ~20 ms
    each, ~10 of them in 4 s at c=32 on iris, ~30 us of a request's CPU (docs/benchmarks.md).
    Once per build, in the explain thread: one full collection (~20 ms), then the freeze."""
    gc.collect()
    gc.freeze()


def _error(message: str, status: int, headers: dict[str, str]) -> Response:
    return Response(json.dumps({"error": message}), status, headers,
                    media_type="application/json")  # fmt: skip


class Explaining:
    """Explainers of the versions a replica serves, and the thread they run in."""

    def __init__(
        self, name: str, timeout_s: float, serving: Callable[[], bool], max_body: int
    ) -> None:
        self.name = name
        self.max_body = max_body
        self.timeout_s = timeout_s
        self._serving = serving  # predictions in the last second?
        self._free_at = 0.0  # when the duty cycle lets the next explanation start
        self._spare_at = 0.0  # when the next spare batch may start
        self._built_s = 0.0  # seconds spent building explainers (shap's import, the trees)
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="jd-explain")
        self._explainers: OrderedDict[str, Explainer] = OrderedDict()
        self._waiting = 0

    def explainer(self, state: LoadedVersion) -> Explainer:
        """The explainer of ``state`` (built on first use; only in the explain thread)."""
        key = f"{state.version}:{state.bento_tag}"
        found = self._explainers.get(key)
        if found is None:
            started, runtime = time.monotonic(), state.runtime
            summary = (state.reference or {}).get("background")
            found = Explainer.build(runtime.model, runtime.schema.names,
                                    runtime.to_model_input, summary)  # fmt: skip
            self._explainers[key] = found
            while len(self._explainers) > KEEP:
                self._explainers.popitem(last=False)
            _freeze_what_was_built()
            self._built_s += time.monotonic() - started
        return found

    def _run(self, state: LoadedVersion, x: Any, deadline: float) -> dict[str, Any]:
        pause = self._free_at - time.monotonic()
        if pause > 0 and self._serving():
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        if time.monotonic() > deadline:
            raise ExplainTimeout(
                f"waited longer than explain_timeout_s ({self.timeout_s:g} s) for this "
                "replica's explainer, busy with earlier explanations or keeping its share "
                "of time for predictions; try again later"
            )
        started = time.monotonic()
        try:
            explainer, parts = self.explainer(state), []
            for i in range(0, len(x), CHUNK_ROWS):
                if i and time.monotonic() > deadline:
                    raise ExplainTimeout(
                        f"explained {i} of {len(x)} instances within explain_timeout_s "
                        f"({self.timeout_s:g} s); send fewer instances per request"
                    )
                rows = x.iloc[i : i + CHUNK_ROWS] if hasattr(x, "iloc") else x[i : i + CHUNK_ROWS]
                parts.append(explainer.explain(rows, deadline))
            return Explanation.join(parts).to_json()
        finally:
            spent = time.monotonic() - started
            self._free_at = time.monotonic() + spent * (1 / SHARE - 1)

    def spare(self, work: Callable[[Any, float], None], arg: Any, done: Callable[[], None]) -> None:
        """Run ``work(arg, deadline)`` in the explain thread if there is room; then ``done()``."""
        self._pool.submit(self._spare, work, arg, done)

    def _spare(
        self, work: Callable[[Any, float], None], arg: Any, done: Callable[[], None]
    ) -> None:
        try:
            started = time.monotonic()
            if (
                self._waiting
                or started < self._spare_at
                or (started < self._free_at and self._serving())
            ):
                return  # callers' explanations first; past its share the batch is dropped
            built = self._built_s
            try:
                work(arg, started + SPARE_S)
            except (ExplainTimeout, ExplainUnavailable) as err:
                _log.info("live importance of %s: %s", self.name, err)
                self._spare_at = time.monotonic() + 60  # e.g. no background: not every second
            except Exception:
                _log.warning("live importance of %s failed", self.name, exc_info=True)
                self._spare_at = time.monotonic() + 60  # one warning a minute, not a second
            # A first build (seconds, once per version) would hold spare work off for
            # minutes at 5 %: the share is kept on the explaining itself.
            spent = time.monotonic() - started - (self._built_s - built)
            self._spare_at = max(self._spare_at, started + spent / SPARE_SHARE)
            self._free_at = max(self._free_at, started + spent / SHARE)
        finally:
            done()

    async def __call__(self, request: Request, table: Routing) -> Response:
        scope = request.scope
        scope["jd_not_traffic"] = True  # not predict traffic: its own latency, no drift
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.max_body:
            return _error(f"body over {self.max_body} bytes", 413, table.primary.headers)
        body = await request.body()
        # The version that would answer this request's predict (same weights, same sticky
        # key), so an explanation under a split explains the prediction the caller got.
        state = table.pick(body, request.headers.get(STICKY_HEADER))
        headers, runtime = state.headers, state.runtime
        scope["jd_method"], scope["jd_body"], scope["jd_state"] = "explain", body, state
        try:
            x = runtime.to_model_input(runtime.instances_from_body(body))
        except state.input_error as err:
            scope["jd_error"] = type(err).__name__
            return _error(str(err), err.status, headers)  # type: ignore[attr-defined]
        scope["jd_rows"] = len(x)
        if self._waiting >= MAX_WAITING:
            scope["jd_error"] = "ExplainBusy"
            return _error(f"{MAX_WAITING} explanations are already waiting on this replica; "
                          "try again later", 503, {**headers, "retry-after": "1"})  # fmt: skip
        deadline = time.monotonic() + self.timeout_s
        self._waiting += 1
        try:
            job = asyncio.get_running_loop().run_in_executor(self._pool, self._run, state, x,
                                                             deadline)  # fmt: skip
            # A model call that never returns must not hold the caller: answer at the bound.
            answer = await asyncio.wait_for(job, self.timeout_s + 1.0)
        except (ExplainTimeout, ExplainUnavailable, TimeoutError) as err:
            scope["jd_error"] = type(err).__name__
            message = str(err) or f"no explanation within explain_timeout_s ({self.timeout_s:g} s)"
            return _error(message, 503, headers)
        except (ValueError, TypeError, KeyError) as err:  # the model refused the input
            scope["jd_error"] = "ModelRejected"
            return _error(f"the model rejected the input: {err}", 422, headers)
        except Exception:
            scope["jd_error"] = "ExplainError"
            _log.exception("explanation failed in %s v%s", self.name, state.version)
            return _error("the explainer failed on this input; see the replica log", 500, headers)
        finally:
            self._waiting -= 1
        answer["version"], answer["request_id"] = state.version, scope["jd_request_id"]
        return Response(state.dumps(answer), media_type="application/json", headers=headers)
