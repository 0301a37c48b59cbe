"""Deployments survive the cluster: a clean stop, a crash of the head, an interrupted rollout.

Streams are desired state too: their consumers come back with a clean restart, and
nothing sent while the cluster was down is lost or answered twice. These tests restart
the session's shared cluster on purpose: what comes back is exactly what the store says,
and the other tests' deployments come back with it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import httpx
import pytest
from conftest import wait_for

import jupyter_deploy as jd

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def _model(c: float, iris: tuple[Any, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=500).fit(*iris)


def _answer(dep: Any, x: Any) -> tuple[int, list[Any]]:
    resp = httpx.post(f"{dep.url}/predict", json={"instances": x.to_dict(orient="records")},
                      headers={"Authorization": f"Bearer {dep.token}"}, timeout=30)  # fmt: skip
    assert resp.status_code == 200, resp.text
    return int(resp.headers["x-model-version"]), resp.json()["predictions"]


def _make_two(iris: tuple[Any, Any]) -> tuple[Any, Any, dict[str, Any]]:
    """alpha at v2 (feedback given, payloads logged) and beta at v1; what they should keep."""
    x, y = iris
    jd.deploy(_model(0.01, iris), name="alpha", sample=x, progress=False)
    alpha = jd.deploy(_model(1.0, iris), name="alpha", sample=x, progress=False)
    beta = jd.deploy(_model(0.1, iris), name="beta", sample=x, progress=False)
    rows = x.sample(10, random_state=1)
    ids = []
    for i in range(10):
        alpha.predict(rows.iloc[i : i + 1])
        ids.append(alpha.last_request_id)
    alpha.feedback(ids[:5], [[label] for label in y.loc[rows.index[:5]].tolist()])
    wait_for(lambda: alpha.metrics()["total_requests"] >= 10, 30, "alpha's counts")
    wait_for(lambda: len(alpha.logs()) >= 10, 30, "alpha's payload log")
    before = {
        "tokens": (alpha.token, beta.token),
        "alpha_total": alpha.metrics()["total_requests"],
        "alpha_matched": alpha.drift()["accuracy"]["labels_total"],
        "alpha_logs": len(alpha.logs()),
    }
    assert before["alpha_matched"] == 5
    return alpha, beta, before


def _check_restored(iris: tuple[Any, Any], before: dict[str, Any]) -> None:
    x = iris[0].head(6)
    alpha, beta = jd.get("alpha"), jd.get("beta")
    assert (alpha.token, beta.token) == before["tokens"]  # same keys: clients keep working
    assert alpha.version == 2 and [v["version"] for v in alpha.versions()] == [1, 2]
    assert _answer(alpha, x) == (2, _model(1.0, iris).predict(x).tolist())
    assert _answer(beta, x) == (1, _model(0.1, iris).predict(x).tolist())
    assert alpha.metrics()["total_requests"] >= before["alpha_total"]
    assert alpha.drift()["accuracy"]["labels_total"] == before["alpha_matched"]
    assert len(alpha.logs()) >= before["alpha_logs"]


N = 2_000  # stream events sent before the restart, and as many while the cluster is down


def _send(r: Any, rows: list[dict[str, Any]], start: int) -> None:
    pipe = r.pipeline(transaction=False)
    for i in range(start, start + N):
        pipe.xadd("r-in", {"data": json.dumps(rows[i % len(rows)]), "id": str(i)})
    pipe.execute()


def test_clean_restart_restores_every_deployment_and_stream(
    cluster: Any, iris: tuple[Any, Any], redis_url: str
) -> None:
    import redis
    from sklearn.tree import DecisionTreeClassifier

    x, y = iris
    model = DecisionTreeClassifier(random_state=0).fit(x, y)
    rows = json.loads(x.to_json(orient="records"))
    expected = model.predict(x).tolist()
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        _, _, before = _make_two(iris)
        dep = jd.deploy(model, name="restream", sample=x, progress=False)
        dep.stream(redis_url, "r-in", "r-out", group="g", batch_size=128)
        _send(r, rows, 0)
        wait_for(lambda: r.xlen("r-out") == N, 180, f"{N} answers before the restart")

        assert jd.stop_cluster() is True
        _send(r, rows, N)  # the broker keeps them while the cluster is down
        # A batch in flight when the cluster stopped: taken by the consumer, not acknowledged.
        held = r.xreadgroup("g", "restream-0", {"r-in": ">"}, count=50)[0][1]
        assert len(held) == 50
        started = time.monotonic()
        jd.start_cluster()
        print(f"restart -> both answering: {time.monotonic() - started:.1f} s")
        _check_restored(iris, before)
        events = [e.event for e in jd.get("alpha")._record.events]
        assert events[-1] == "restore" and events.count("deploy") == 2

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
        for name in ("alpha", "beta", "restream"):
            jd.undeploy(name)


def test_a_crashed_head_comes_back_with_its_deployments(cluster: Any,
                                                        iris: tuple[Any, Any]) -> None:  # fmt: skip
    from jupyter_deploy.control import cluster as jd_cluster
    from jupyter_deploy.control.registry import SAVE_S
    from jupyter_deploy.settings import Settings

    try:
        _, _, before = _make_two(iris)
        time.sleep(SAVE_S + 1)  # a crash may lose the counters of the last SAVE_S seconds
        info = jd_cluster.read_state(Settings.from_env())
        assert info is not None and info.pid is not None
        for pid in jd_cluster.session_pids(info.pid):
            os.kill(pid, signal.SIGKILL)  # no stop, no checkpoint: a crash
        wait_for(lambda: not jd_cluster.session_pids(info.pid), 30, "the head to die")
        jd_cluster.disconnect()
        jd.start_cluster()
        _check_restored(iris, before)
    finally:
        for name in ("alpha", "beta"):
            jd.undeploy(name)


def test_a_rollout_interrupted_between_its_steps_leaves_the_old_version(
    cluster: Any, iris: tuple[Any, Any]
) -> None:
    """Serve was told about v2, the driver died before the store recorded it: v1 is live."""
    from jupyter_deploy import _ray
    from jupyter_deploy.build.capture import capture
    from jupyter_deploy.build.packaging import build_bento, export_archive
    from jupyter_deploy.client import actions
    from jupyter_deploy.rollout import serving
    from jupyter_deploy.rollout.target import target_of
    from jupyter_deploy.spec import DeploymentSpec

    x = iris[0]
    dep = jd.deploy(_model(0.01, iris), name="halfway", sample=x, progress=False)
    try:
        # The first step of a deploy, as api.deploy takes it: a new version in the store,
        # Serve told to serve it. The second step (set_live) never comes.
        bento = build_bento(capture(_model(1.0, iris), sample=x), DeploymentSpec(name="halfway"))
        registry = actions.registry()
        _ray.call(registry.put_archive, bento.tag, export_archive(bento.tag))
        rec = _ray.call(registry.new_version, "halfway", bento.tag, dep.spec, {})
        serving.submit(target_of(rec, 2), target_of(rec, 2).spec.autoscaling)
        wait_for(lambda: _answer(dep, x.head(3))[0] == 2, 60, "Serve to switch to v2")
        assert jd.get("halfway").version == 1  # the store never said v2
        jd.start_cluster()  # reconnecting reconciles Serve with the store
        assert _answer(dep, x.head(3)) == (1, _model(0.01, iris).predict(x.head(3)).tolist())
        assert jd.get("halfway")._record.events[-1].detail == "drifted"
    finally:
        jd.undeploy("halfway")


def test_registry_memory_stays_flat_and_deleted_archives_go(cluster: Any,
                                                            tmp_path: Any) -> None:  # fmt: skip
    """30 deploy/delete cycles of a 2 MB archive through the registry: no archive kept in RAM."""
    import psutil

    from jupyter_deploy import _ray
    from jupyter_deploy.client import actions
    from jupyter_deploy.spec import DeploymentSpec

    registry = actions.registry()
    pid = _ray.call(registry.pid)
    spec = DeploymentSpec(name="cycle").to_dict()
    heap = []
    for i in range(30):
        tag = f"cycle:v{i}"
        _ray.call(registry.put_archive, tag, os.urandom(2 * 2**20))
        _ray.call(registry.new_version, "cycle", tag, spec, {})
        _ray.call(registry.set_live, "cycle", 1, "deploy")
        assert len(_ray.call(registry.get_archive, tag)) == 2 * 2**20
        assert _ray.call(registry.delete, "cycle") is True
        assert _ray.call(registry.has_archive, tag) is False  # released with its deployment
        heap.append(_anonymous_bytes(pid))
    growth_mb = (heap[-1] - heap[4]) / 2**20
    rss_mb = psutil.Process(pid).memory_info().rss / 2**20
    print(f"registry heap growth over cycles 5-30: {growth_mb:.1f} MB (RSS now {rss_mb:.0f} MB)")
    assert growth_mb < 10, f"{growth_mb:.1f} MB: 50 MB of archives went through it"


def _anonymous_bytes(pid: int) -> int:
    """The process's anonymous (heap) memory. RSS also counts the pages of Ray's shared
    object store that the actor touched while receiving and returning archives: those are
    the transport's, reused by it, not memory the registry holds."""
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        fields = dict(line.split(":", 1) for line in fh if ":" in line)
    return int(fields["Anonymous"].split()[0]) * 1024
