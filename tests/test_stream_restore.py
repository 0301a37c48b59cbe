"""A stream is desired state: its consumers come back after a cluster restart.

This restarts the session's shared cluster on purpose (as ``test_restore.py`` does): the
other tests' deployments come back with it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import wait_for

import jupyter_deploy as jd

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
N = 2_000


def _send(r: Any, rows: list[dict[str, Any]], start: int) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(start, start + N):
        pipe.xadd("r-in", {"data": json.dumps(rows[i % len(rows)]), "id": str(i)})
    pipe.execute()


def test_consumers_come_back_after_a_cluster_restart(
    cluster: Any, iris: tuple[Any, Any], redis_url: str
) -> None:
    import redis
    from sklearn.tree import DecisionTreeClassifier

    x, y = iris
    model = DecisionTreeClassifier(random_state=0).fit(x, y)
    rows = json.loads(x.to_json(orient="records"))
    expected = model.predict(x).tolist()
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    dep = jd.deploy(model, name="restream", sample=x, progress=False)
    try:
        dep.stream(redis_url, "r-in", "r-out", group="g", batch_size=128)
        _send(r, rows, 0)
        wait_for(lambda: r.xlen("r-out") == N, 180, f"{N} answers before the restart")

        assert jd.stop_cluster() is True
        _send(r, rows, N)  # the broker keeps them while the cluster is down
        # A batch in flight when the cluster stopped: taken by the consumer, not acknowledged.
        held = r.xreadgroup("g", "restream-0", {"r-in": ">"}, count=50)[0][1]
        assert len(held) == 50
        jd.start_cluster()
        wait_for(lambda: r.xlen("r-out") == 2 * N, 300, f"{2 * N} answers after the restart")

        answers = [a for _, a in r.xrange("r-out")]
        ids = [a["id"] for a in answers]
        assert sorted(map(int, ids)) == list(range(2 * N))  # each answered once, none lost
        assert all(json.loads(a["prediction"]) == expected[int(a["id"]) % len(rows)]
                   for a in answers)  # fmt: skip
        assert r.xpending("r-in", "g")["pending"] == 0
        (job,) = jd.get("restream").streams()
        status = job.status()
        assert (status.consumers, status.lag, status.processed) == (1, 0, N)
        job.stop()
        assert jd.get("restream").streams() == []
    finally:
        jd.undeploy("restream")
