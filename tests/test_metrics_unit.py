"""Histogram counts and percentiles, and the aggregator's arithmetic, without a cluster."""

from __future__ import annotations

import pytest

from jupyter_deploy.monitoring.aggregator import Aggregator
from jupyter_deploy.monitoring.metrics import Counts, Push


def test_counts_are_exact_and_percentiles_fall_in_the_right_bucket() -> None:
    c = Counts()
    for ms in [0.8] * 90 + [40.0] * 9 + [900.0]:
        c.add(200, ms, rows=1, error=None)
    c.add(400, 1.2, rows=0, error="InputError")
    assert c.requests == 101 and c.rows == 100
    assert c.by_status == {"200": 100, "400": 1} and c.errors == {"InputError": 1}
    p50, p95, p99 = (c.percentile(q) for q in (0.5, 0.95, 0.99))
    assert p50 is not None and 0.5 <= p50 <= 1.0
    assert p95 is not None and 30 <= p95 <= 50
    assert p99 is not None and 30 <= p99 <= 1000
    assert Counts().percentile(0.5) is None


def test_aggregator_sums_replicas_and_speaks_prometheus() -> None:
    agg = Aggregator()
    a, b = Counts(), Counts()
    for _ in range(7):
        a.add(200, 2.0, 1, None)
    for _ in range(5):
        b.add(200, 3.0, 1, None)
    b.add(422, 2.0, 1, "ModelRejected")
    agg.push("m", 1, "replica-a", Push(a))
    agg.push("m", 1, "replica-b", Push(b))
    snap = agg.snapshot("m", window_s=60)
    assert snap["total_requests"] == 13
    assert snap["total_by_status"] == {"200": 12, "422": 1}
    assert snap["by_version"] == {"1": 13}
    assert snap["error_rate"] == pytest.approx(1 / 13)
    assert max(p["replicas"] for p in snap["series"]) == 2
    text = agg.prometheus()
    assert 'jupyter_deploy_requests_total{deployment="m",status="200"} 12' in text
    assert 'jupyter_deploy_request_latency_ms_count{deployment="m"} 13' in text
    agg.push("other", 1, "replica-c", Push(a))
    assert 'deployment="other"' in agg.prometheus()
    assert 'deployment="other"' not in agg.prometheus(only="m")
    agg.forget("m")
    assert agg.snapshot("m")["total_requests"] == 0
