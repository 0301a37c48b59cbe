"""The canary's judge and policy, on counts made by hand (no cluster: decisions only)."""

from __future__ import annotations

import pytest

from jupyter_deploy.control.records import Canary, CanaryPolicy
from jupyter_deploy.errors import InvalidSpecError
from jupyter_deploy.monitoring.metrics import Counts
from jupyter_deploy.rollout.canary import advanced, judge

POLICY = CanaryPolicy(steps=(0.1, 0.5, 1.0), interval_s=10, min_requests=50)


def _counts(ok: int, status: int = 200, bad: int = 0, latency_ms: float = 1.0) -> Counts:
    counts = Counts()
    for _ in range(ok):
        counts.add(200, latency_ms, 1, None)
    for _ in range(bad):
        counts.add(status, latency_ms, 1, "ModelError" if status >= 500 else "InputError")
    return counts


def _canary(step: int = 0) -> Canary:
    return Canary(version=2, baseline=1, policy=POLICY, started=0.0, step=step, step_started=0.0)


def test_a_share_becomes_the_default_steps_above_it() -> None:
    assert CanaryPolicy.parse(0.1).steps == (0.1, 0.25, 0.5, 1.0)
    assert CanaryPolicy.parse(0.3).steps == (0.3, 0.5, 1.0)
    custom = CanaryPolicy.parse({"steps": [0.2, 1.0], "interval_s": 5, "min_requests": 10})
    assert custom.steps == (0.2, 1.0) and custom.interval_s == 5


@pytest.mark.parametrize(
    ("option", "message"),
    [(1.0, "first share below 1.0"), (0, "rise within"), ({"steps": [0.5, 0.2, 1.0]}, "rise"),
     ({"steps": [0.1, 0.5]}, "last canary step"), ({"interval": 5}, "Unknown canary"),
     ({"max_error_rate": 2}, "max_error_rate"), ("fast", "share or a dict"), (True, "share")],
)  # fmt: skip
def test_bad_policies_are_one_line_errors(option: object, message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        CanaryPolicy.parse(option)  # type: ignore[arg-type]


def test_too_few_requests_wait_even_when_due() -> None:
    verdict = judge(_canary(), {1: _counts(500), 2: _counts(49)}, now=60)
    assert verdict.action == "wait" and "49 of 50" in verdict.reason


def test_errors_roll_back_before_the_interval_ends() -> None:
    verdict = judge(_canary(), {1: _counts(500), 2: _counts(40, 500, bad=40)}, now=3)
    assert verdict.action == "rollback" and "50.0%" in verdict.reason
    rolled = advanced(_canary(), verdict, now=3)
    assert rolled.state == "rolled_back" and rolled.ended == 3 and rolled.reason == verdict.reason


def test_client_errors_count_only_above_the_baselines() -> None:
    base = _counts(450, 400, bad=50)  # 10 % bad requests, the callers' own mistakes
    same = judge(_canary(), {1: base, 2: _counts(90, 400, bad=10)}, now=11)
    assert same.action == "step"
    worse = judge(_canary(), {1: base, 2: _counts(70, 422, bad=30)}, now=11)
    assert worse.action == "rollback"


def test_a_slower_canary_rolls_back_but_not_within_the_histograms_resolution() -> None:
    slow = judge(_canary(), {1: _counts(100, latency_ms=4), 2: _counts(100, latency_ms=40)}, 11)
    assert slow.action == "rollback" and "p95" in slow.reason
    close = judge(_canary(), {1: _counts(100, latency_ms=0.4), 2: _counts(100, latency_ms=1.2)},
                  11)  # fmt: skip
    assert close.action == "step"


def test_healthy_steps_up_then_promotes() -> None:
    first = judge(_canary(0), {1: _counts(500), 2: _counts(60)}, now=11)
    assert first.action == "step"
    second = advanced(_canary(0), first, now=11)
    assert second.step == 1 and second.share == 0.5 and second.step_started == 11
    assert judge(second, {1: _counts(60), 2: _counts(60)}, now=15).action == "wait"
    last = judge(second, {1: _counts(60), 2: _counts(60)}, now=21)
    assert last.action == "promote"
    assert advanced(second, last, 21).state == "promoted"


def test_compare_puts_the_baseline_first_with_intervals_on_the_others() -> None:
    from jupyter_deploy.monitoring.compare import compare
    from jupyter_deploy.monitoring.metrics import ShadowCounts

    quality = {1: {"accuracy": {"accuracy": 0.9, "labels": 1000}},
               2: {"accuracy": {"accuracy": 0.8, "labels": 1000}}}  # fmt: skip
    data = {"counts": {1: _counts(900, 500, bad=100), 2: _counts(1000)}, "quality": quality,
            "shadow": {3: ShadowCounts(requests=10, rows=20, agree=15)}}  # fmt: skip
    rows = compare(1, {1: 0.5, 2: 0.5}, 3, data)
    assert [(r["version"], r["role"]) for r in rows] == [(1, "baseline"), (2, "split"),
                                                         (3, "shadow")]  # fmt: skip
    base, other, shadow = rows
    assert base["error_rate"] == 0.1 and other["error_rate"] == 0.0
    err = other["error_rate_vs_baseline"]
    # -0.1 +- 1.96 * sqrt(0.1 * 0.9 / 1000): a difference the data can tell
    assert err["diff"] == -0.1 and err["ci95"] == (-0.1186, -0.0814)
    acc = other["accuracy_vs_baseline"]
    assert acc["diff"] == -0.1 and acc["ci95"][0] < -0.1 < acc["ci95"][1] < 0
    assert shadow["agreement"] == 0.75 and shadow["requests"] == 10
    assert "error_rate_vs_baseline" not in shadow and "error_rate_vs_baseline" not in base
