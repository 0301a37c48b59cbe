"""Stream consumers against a real ``redis-server`` (Debian's) on a free loopback port.

The restore after a cluster restart is in ``test_restore.py`` (one restart for both).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import redis_server, wait_for

import jupyter_deploy as jd
from jupyter_deploy.cli import main

pytestmark = pytest.mark.cluster


def test_stream_answers_acknowledges_claims_and_dead_letters(
    iris_dep: Any, iris_pipe: Any, iris: tuple[Any, Any], redis_url: str
) -> None:
    import redis

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    x = iris[0].head(30)
    records = json.loads(x.to_json(orient="records"))
    r.xgroup_create("in", "jupyter_deploy", id="0", mkstream=True)
    for i, rec in enumerate(records):  # half as a JSON "data" field, half as plain fields
        fields = {"data": json.dumps(rec)} if i % 2 else {k: str(v) for k, v in rec.items()}
        r.xadd("in", {**fields, "id": str(i)})
    # A consumer that crashed: it took three messages and never acknowledged them.
    assert len(r.xreadgroup("jupyter_deploy", "crashed", {"in": ">"}, count=3)[0][1]) == 3
    r.xadd("in", {"data": json.dumps({**records[0], "sepal_width": "abc"}), "id": "bad-type"})
    r.xadd("in", {**{k: str(v) for k, v in records[0].items()}, "colour": "red", "id": "bad-col"})

    job = iris_dep.stream(redis_url, "in", "out", claim_idle_ms=200)
    wait_for(lambda: r.xlen("out") == 30 and r.xlen("in:dead") == 2, 180, "30 answers, 2 dead")
    stats = job.stop()

    answers = {a["id"]: a for _, a in r.xrange("out")}
    expected = iris_pipe.predict(x).tolist()
    assert [json.loads(answers[str(i)]["prediction"]) for i in range(30)] == expected
    assert {a["version"] for a in answers.values()} == {str(iris_dep.version)}
    dead = {d["id"]: d["error"] for _, d in r.xrange("in:dead")}
    assert dead["bad-type"] == "column 'sepal_width' expects a number, got 'abc'"
    assert "unknown column(s) 'colour'" in dead["bad-col"]
    assert r.xpending("in", "jupyter_deploy")["pending"] == 0  # everything acknowledged
    assert sum(s.claimed for s in stats) == 3 and sum(s.scored for s in stats) == 30
    assert not any(s.running for s in stats)


def _model(c: float, iris: tuple[Any, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=500).fit(*iris)


def _send(r: Any, stream: str, rows: Any, start: int = 0) -> None:
    for i, rec in enumerate(json.loads(rows.to_json(orient="records")), start):
        r.xadd(stream, {"data": json.dumps(rec), "id": str(i)})


def _answers(r: Any, stream: str) -> dict[str, dict[str, str]]:
    return {a["id"]: a for _, a in r.xrange(stream)}


def test_consumers_follow_the_live_version_and_the_split(
    cluster: Any, iris: tuple[Any, Any], redis_url: str
) -> None:
    import ray
    import redis

    from jupyter_deploy.client import actions

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    x = iris[0].sample(60, random_state=3)
    v1, v2 = _model(0.01, iris), _model(1.0, iris)
    expected = {1: v1.predict(x).tolist(), 2: v2.predict(x).tolist()}
    assert expected[1] != expected[2]  # the test can tell the versions apart
    dep = jd.deploy(v1, name="follow", sample=iris[0], progress=False)
    try:
        job = dep.stream(redis_url, "f-in", "f-out", batch_size=16)
        pinned = dep.stream(redis_url, "p-in", "p-out", version=1)
        _send(r, "f-in", x.head(20))
        wait_for(lambda: r.xlen("f-out") == 20, 120, "20 answers by v1")
        dep = jd.deploy(v2, name="follow", sample=iris[0], progress=False)
        wait_for(lambda: job.status().versions == (2,), 60, "the consumer to follow v2")
        _send(r, "f-in", x.iloc[20:40], 20)
        _send(r, "p-in", x.iloc[20:40], 20)
        wait_for(lambda: r.xlen("f-out") == 40 and r.xlen("p-out") == 20, 120, "40 + 20 answers")
        dep = dep.split({1: 0.5, 2: 0.5})
        wait_for(lambda: job.status().versions == (1, 2), 60, "the consumer to split")
        _send(r, "f-in", x.iloc[40:60], 40)
        wait_for(lambda: r.xlen("f-out") == 60, 120, "60 answers")

        answers = _answers(r, "f-out")
        by = {i: int(answers[str(i)]["version"]) for i in range(60)}
        assert {by[i] for i in range(20)} == {1} and {by[i] for i in range(20, 40)} == {2}
        assert {by[i] for i in range(40, 60)} == {1, 2}  # 2**-19 odds of a false failure
        for i in range(60):  # every answer is its version's prediction
            assert json.loads(answers[str(i)]["prediction"]) == expected[by[i]][i]
        assert {a["version"] for a in _answers(r, "p-out").values()} == {"1"}
        status = job.status()
        assert (status.consumers, status.processed, status.lag) == (1, 60, 0)
        assert sorted(j.record.input for j in dep.streams()) == ["f-in", "p-in"]
        assert pinned.status().versions == (1,)

        dep.delete()  # its streams stop with it
        registry = actions.registry()
        assert ray.get(registry.streams.remote("follow")) == []
        with pytest.raises(ValueError):
            ray.get_actor("jd-stream:follow:f-in/jupyter_deploy:0", namespace="jupyter_deploy")
    finally:
        if "follow" in [d.name for d in jd.list_deployments()]:
            jd.undeploy("follow")


def test_cli_stream_start_status_stop(
    iris_dep: Any, iris: tuple[Any, Any], redis_url: str, capsys: Any
) -> None:
    import redis

    r = redis.Redis.from_url(redis_url, decode_responses=True)
    name = iris_dep.name
    assert main(["stream", "start", name, redis_url, "--input", "c-in", "--output", "c-out",
                 "--group", "cli", "--batch-size", "8"]) == 0  # fmt: skip
    assert "Started 1 consumer(s) of 'iris': c-in -> c-out (group cli)" in capsys.readouterr().out
    _send(r, "c-in", iris[0].head(25))
    wait_for(lambda: r.xlen("c-out") == 25, 120, "25 answers")

    assert main(["--json", "stream", "status", name]) == 0
    (row,) = [s for s in json.loads(capsys.readouterr().out) if s["input"] == "c-in"]
    assert (row["consumers"], row["processed"], row["lag"], row["group"]) == (1, 25, 0, "cli")
    assert (row["failed"], row["dead_lettered"]) == (0, 0)
    assert main(["stream", "status", name, "--input", "c-in"]) == 0
    header, line = capsys.readouterr().out.splitlines()
    assert header.split() == ["input", "output", "group", "consumers", "events_per_s", "lag",
                              "processed", "failed", "dead_lettered", "versions"]  # fmt: skip
    assert line.split()[:4] == ["c-in", "c-out", "cli", "1"]
    from jupyter_deploy.notebook.monitor import Monitor

    monitor = Monitor(iris_dep)  # %monitor's widget: a row per stream, with lag and events/s
    monitor.refresh_streams()
    assert "c-in → c-out" in monitor.streams.value and "events/s" in monitor.streams.value

    # A consumer killed by the OS comes back under its name; nothing it held is lost.
    import signal

    import ray

    (job,) = [j for j in iris_dep.streams() if j.record.input == "c-in"]
    os.kill(ray.get(job.actors[0].pid.remote()), signal.SIGKILL)
    _send(r, "c-in", iris[0].iloc[25:40], 25)
    wait_for(lambda: r.xlen("c-out") == 40, 180, "40 answers after the kill")
    assert sorted(int(a["id"]) for _, a in r.xrange("c-out")) == list(range(40))  # each once
    assert job.status().consumers == 1

    assert main(["stream", "start", name, redis_url, "--input", "c-in", "--output", "x",
                 "--group", "cli"]) == 1  # fmt: skip
    assert "already consumes c-in in group cli" in capsys.readouterr().err
    assert main(["stream", "stop", name, "--input", "c-in"]) == 0
    assert capsys.readouterr().out.strip() == "Stopped 1 stream(s) of 'iris': c-in."
    assert main(["stream", "status", name, "--input", "c-in"]) == 0
    assert capsys.readouterr().out.strip() == "'iris' consumes no stream."

    # Mistakes are one line and an exit code.
    assert main(["stream", "start", "nosuch", redis_url, "--input", "a", "--output", "b"]) == 3
    assert capsys.readouterr().err.startswith("error: No deployment named 'nosuch'")
    assert main(["stream", "start", name, redis_url]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_broker_password_is_never_saved(
    iris_dep: Any, iris: tuple[Any, Any], tmp_path: Path, monkeypatch: Any
) -> None:
    import redis

    from jupyter_deploy.errors import StreamSpecError
    from jupyter_deploy.settings import Settings

    secret = "s3cret-" + os.urandom(8).hex()
    with redis_server(tmp_path, "--requirepass", secret) as url:
        with_secret = url.replace("redis://", f"redis://:{secret}@")
        with pytest.raises(StreamSpecError, match="password_env") as err:
            iris_dep.stream(with_secret, "s-in", "s-out")
        assert secret not in str(err.value)
        with pytest.raises(StreamSpecError, match="JD_TEST_BROKER_PW"):  # not set here
            iris_dep.stream(url, "s-in", "s-out", password_env="JD_TEST_BROKER_PW")

        monkeypatch.setenv("JD_TEST_BROKER_PW", secret)
        job = iris_dep.stream(url, "s-in", "s-out", password_env="JD_TEST_BROKER_PW")
        r = redis.Redis.from_url(with_secret, decode_responses=True)
        _send(r, "s-in", iris[0].head(5))
        wait_for(lambda: r.xlen("s-out") == 5, 120, "5 answers through a password")
        assert job.record.url == url and job.record.password_env == "JD_TEST_BROKER_PW"
        assert secret not in repr(job) and secret not in repr(job.record)
        state = Settings.from_env().state_path
        saved = b"".join(p.read_bytes() for p in state.parent.glob(state.name + "*"))
        assert secret.encode() not in saved and b"JD_TEST_BROKER_PW" in saved
        job.stop()
