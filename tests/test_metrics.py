"""Metrics recorded by the replicas and aggregated in the cluster: exact, shared, exported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from conftest import wait_for

import jupyter_deploy as jd
from jupyter_deploy.monitoring.metrics import FLUSH_S

pytestmark = pytest.mark.cluster

GOOD = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
BAD = {"instances": [[5.1, 3.5]]}


@pytest.fixture(scope="module")
def counted(cluster: Any, iris: tuple[Any, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=300).fit(iris[0].to_numpy(), iris[1])
    dep = jd.deploy(model, name="counted", min_replicas=2, max_replicas=2, num_cpus=0.25,
                    progress=False)  # fmt: skip
    yield dep
    dep.delete()


def test_counts_are_exact_across_two_replicas(counted: Any) -> None:
    assert counted.status()["replicas"].get("RUNNING") == 2
    headers = {"Authorization": f"Bearer {counted.token}"}
    bodies = [GOOD] * 270 + [BAD] * 30
    # deploy()'s readiness probes are requests too: let their counts land, then start.
    time.sleep(2 * FLUSH_S)
    before = counted.metrics()["total_by_status"]

    def send(body: dict[str, Any]) -> int:
        with httpx.Client(timeout=30) as client:
            return client.post(f"{counted.url}/predict", json=body, headers=headers).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(send, bodies))
    assert statuses.count(200) == 270 and statuses.count(400) == 30
    expected = sum(before.values()) + 300

    def all_counted() -> dict[str, Any] | None:
        snap = counted.metrics()
        return snap if snap["total_requests"] >= expected else None

    snap = wait_for(all_counted, 20, "300 requests to reach the aggregator")
    time.sleep(2 * FLUSH_S)  # nothing more may arrive: the count is exact, not a lower bound
    snap = counted.metrics()
    assert snap["total_requests"] == expected
    assert snap["total_by_status"] == {"200": before.get("200", 0) + 270, "400": 30}
    assert snap["errors"] == {"InputError": 30}
    assert snap["by_version"] == {"1": expected}
    assert snap["latency_ms"]["p50"] is not None and snap["latency_ms"]["p50"] < 1000
    assert max(p["replicas"] for p in snap["series"]) == 2  # both replicas served and pushed


def test_another_process_reads_the_same_numbers(counted: Any) -> None:
    total = counted.metrics()["total_requests"]
    code = "import json, jupyter_deploy as jd; print(json.dumps(jd.get('counted').metrics()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=os.environ.copy())  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["total_requests"] == total


def test_prometheus_text_over_http_and_the_cli(counted: Any) -> None:
    resp = httpx.get(f"{counted.url}/metrics",
                     headers={"Authorization": f"Bearer {counted.token}"})  # fmt: skip
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    assert 'jupyter_deploy_requests_total{deployment="counted",status="200"}' in resp.text
    assert 'deployment="iris"' not in resp.text and 'deployment="' in resp.text
    assert httpx.get(f"{counted.url}/metrics").status_code == 401
    cli = subprocess.run([sys.executable, "-m", "jupyter_deploy.cli", "--json", "metrics",
                          "counted"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert json.loads(cli.stdout)["total_requests"] >= 300
