"""Stream consumers against a real ``redis-server`` (Debian's) on a free loopback port."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("redis-server") is None:  # scripts/setup.sh installs it: CI must not skip
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    import redis

    port = free_port()
    workdir: Path = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)

    def up() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    try:
        wait_for(up, 30, "redis-server to answer PING")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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
