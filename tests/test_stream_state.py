"""A stream's desired state without a cluster: its row in the real SQLite store, the URL's
password kept out of it, and the versions a consumer picks from a deployment's record."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from jupyter_deploy.control.records import DeploymentRecord, StreamRecord, Traffic
from jupyter_deploy.control.store import Store
from jupyter_deploy.stream.broker import Message, split_url
from jupyter_deploy.stream.consumer import Plan


def test_a_url_loses_its_password_and_keeps_the_rest() -> None:
    assert split_url("redis://:pw@127.0.0.1:6379/0") == ("redis://127.0.0.1:6379/0", "pw")
    assert split_url("rediss://me:pw@[::1]:7000/2?ssl_cert_reqs=none") == (
        "rediss://me@[::1]:7000/2?ssl_cert_reqs=none", "pw")  # fmt: skip
    assert split_url("redis://cache:6379/1") == ("redis://cache:6379/1", None)


def test_stream_rows_belong_to_their_deployment(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    rec = StreamRecord("churn", "redis://h:6379/0", "in", "out", consumers=2, version=None,
                       password_env="REDIS_PW", started=1.0)  # fmt: skip
    assert store.put_stream(rec) is False  # no such deployment
    store.new_version("churn", "churn:abc", {}, {})
    assert store.put_stream(rec) is True
    store.close()
    store = Store(tmp_path / "state.db")  # a new registry after a restart reads the same rows
    assert store.streams() == [rec] and store.streams("other") == []
    assert [e.detail for e in store.get("churn").events] == [  # type: ignore[union-attr]
        "started in -> out (2 consumers)"]  # fmt: skip
    assert store.drop_stream("churn", rec.key) is True and store.streams() == []
    store.put_stream(rec)
    store.delete("churn")  # the deployment's streams go with it
    assert store.streams() == []


def test_a_consumer_scores_with_the_live_version_or_the_split() -> None:
    live = DeploymentRecord("d", live=2)
    assert Plan.of(live, None).versions == (2,)
    assert Plan.of(live, 1).versions == (1,)  # a pinned stream ignores the live version
    split = DeploymentRecord("d", live=1, traffic=Traffic({1: 0.75, 2: 0.25, 3: 0.0}, "user",
                                                          shadow=4, shadow_rate=1.0))  # fmt: skip
    plan = Plan.of(split, None)
    assert plan.versions == (1, 2)  # no share, no messages; a shadow gets none either
    assert Plan.of(split, 3).versions == (3,)
    msg = Message("1-0", {})
    picks = Counter(plan.pick(msg, {"x": 1}) for _ in range(4000))
    assert set(picks) == {1, 2} and picks[1] > picks[2]
    sticky = {plan.pick(msg, {"user": "ann", "x": i}) for i in range(50)}
    assert len(sticky) == 1  # one user, one version while the weights stay
