"""The canary's judge: from two versions' counts over an interval, what to do next.

Pure decisions, no I/O: the controller (:mod:`jupyter_deploy.rollout.controller`) reads the
counts from the aggregator and applies the verdict. A canary regresses when its error rate
exceeds the baseline's by more than ``max_error_rate`` (server errors count whole; client
errors only where the canary's 4xx rate is above the baseline's: a bad request is the
caller's, the same for every version), or when its p95 latency is over
``max_latency_ratio`` times the baseline's *and* at least :data:`LATENCY_FLOOR_MS` more
(the latency histogram cannot tell apart two sub-millisecond models), both judged on at
least :data:`LATENCY_MIN_REQUESTS` requests (a p95 of fewer is one slow request).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..control.records import Canary
from ..monitoring.metrics import Counts

LATENCY_FLOOR_MS = 2.0
LATENCY_MIN_REQUESTS = 100


@dataclass(frozen=True)
class Verdict:
    """``wait``, ``step`` (to the next share), ``promote`` or ``rollback``, and why."""

    action: str
    reason: str


def _rates(counts: Counts) -> tuple[float, float]:
    """(server error rate, client error rate) of an interval's requests."""
    n = counts.requests or 1
    server = sum(k for code, k in counts.by_status.items() if int(code) >= 500)
    client = sum(k for code, k in counts.by_status.items() if 400 <= int(code) < 500)
    return server / n, client / n


def error_rate(canary: Counts, baseline: Counts) -> float:
    """The canary's errors that the baseline does not have: 5xx, plus excess 4xx."""
    server, client = _rates(canary)
    base_client = _rates(baseline)[1] if baseline.requests else 0.0
    return server + max(0.0, client - base_client)


def judge(canary: Canary, counts: dict[int, Counts], now: float) -> Verdict:
    """What the controller does with ``canary`` given each version's counts this interval."""
    policy = canary.policy
    cand = counts.get(canary.version, Counts())
    base = counts.get(canary.baseline, Counts())
    due = now >= canary.step_started + policy.interval_s
    if cand.requests < policy.min_requests:
        if not due:
            return Verdict("wait", f"{cand.requests} of {policy.min_requests} requests so far")
        return Verdict("wait", f"only {cand.requests} of {policy.min_requests} requests in "
                       f"{now - canary.step_started:.0f} s: waiting for more")  # fmt: skip
    errors, base_errors = error_rate(cand, base), _rates(base)[0] if base.requests else 0.0
    if errors - base_errors > policy.max_error_rate:
        return Verdict("rollback", f"error rate {errors:.1%} against the baseline's "
                       f"{base_errors:.1%} (limit +{policy.max_error_rate:.1%}) in "
                       f"{cand.requests} requests")  # fmt: skip
    p95, base_p95 = cand.percentile(0.95), base.percentile(0.95)
    if (
        p95 is not None
        and base_p95 is not None
        and min(cand.requests, base.requests) >= max(policy.min_requests, LATENCY_MIN_REQUESTS)
        and p95 > base_p95 * policy.max_latency_ratio
        and p95 - base_p95 >= LATENCY_FLOOR_MS
    ):
        ratio, limit = p95 / base_p95, policy.max_latency_ratio
        return Verdict("rollback", f"p95 latency {p95:.1f} ms is {ratio:.1f}x the baseline's "
                       f"{base_p95:.1f} ms (limit {limit:g}x)")  # fmt: skip
    if not due:
        return Verdict("wait", f"healthy so far ({cand.requests} requests)")
    nxt = canary.step + 1
    healthy = f"healthy over {cand.requests} requests at {canary.share:.0%}"
    if policy.steps[nxt] >= 1.0:
        return Verdict("promote", healthy)
    return Verdict("step", healthy)


def advanced(canary: Canary, verdict: Verdict, now: float) -> Canary:
    """The canary's new state once ``verdict`` is applied."""
    if verdict.action == "step":
        return replace(canary, step=canary.step + 1, step_started=now, reason=verdict.reason)
    if verdict.action == "promote":
        return replace(canary, step=len(canary.policy.steps) - 1, state="promoted", ended=now,
                       reason=verdict.reason)  # fmt: skip
    if verdict.action == "rollback":
        return replace(canary, state="rolled_back", ended=now, reason=verdict.reason)
    return replace(canary, reason=verdict.reason)
