"""The durable store on a real SQLite file: transactions, crashes, archives."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jupyter_deploy.control.store import Store

SPEC = {"name": "churn", "autoscaling": {"min_replicas": 1, "max_replicas": 2}}


def test_versions_live_and_history(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    first = store.new_version("churn", "churn:a", SPEC, {"model_class": "LogisticRegression"})
    assert first.live is None and [v.version for v in first.versions] == [1]
    store.set_live("churn", 1, "deploy")
    second = store.new_version("churn", "churn:b", SPEC, {})
    assert second.keys == first.keys == []  # keys are made by the caller, hashed (test_keys)
    rec = store.set_live("churn", 2, "deploy")
    assert rec.live == 2 and rec.newest.bento_tag == "churn:b"
    assert [(e.event, e.version) for e in rec.events] == [("deploy", 1), ("deploy", 2)]
    store.close()
    again = Store(tmp_path / "state.db")  # what a new registry after a restart reads
    assert again.get("churn") == rec
    assert (tmp_path / "state.db").stat().st_mode & 0o777 == 0o600  # the owner's only


def test_a_failed_version_is_dropped_and_the_last_one_takes_the_deployment(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    store.new_version("churn", "churn:a", SPEC, {})
    store.drop_version("churn", 1)
    assert store.get("churn") is None
    store.new_version("other", "other:a", SPEC, {})
    store.set_live("other", 1, "deploy")
    assert store.delete("other") is True and store.get("other") is None
    assert store.delete("other") is False


def test_an_error_inside_a_transaction_changes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    store.new_version("churn", "churn:a", SPEC, {})
    store.set_live("churn", 1, "deploy")
    with pytest.raises(RuntimeError), store._tx() as db:
        db.execute("UPDATE deployments SET live = 2 WHERE name = 'churn'")
        raise RuntimeError("the driver died here")
    assert store.get("churn").live == 1  # type: ignore[union-attr]


def test_a_process_killed_mid_transaction_leaves_the_old_state(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    store.new_version("churn", "churn:a", SPEC, {})
    store.set_live("churn", 1, "deploy")
    store.close()
    script = textwrap.dedent(f"""
        import os, signal
        from jupyter_deploy.control.store import Store
        store = Store({str(tmp_path / "state.db")!r})
        store.new_version("churn", "churn:b", {SPEC!r}, {{}})
        with store._tx() as db:  # what set_live does, cut off before COMMIT
            db.execute("UPDATE deployments SET live = 2 WHERE name = 'churn'")
            db.execute("INSERT INTO events (name, time, event) VALUES ('churn', 0, 'x')")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == -9, done.stderr
    rec = Store(tmp_path / "state.db").get("churn")
    assert rec is not None and rec.live == 1
    assert [v.version for v in rec.versions] == [1, 2]  # the new version was committed first
    assert [e.event for e in rec.events] == ["deploy"]


def test_archives_are_files_and_go_with_the_last_version_using_them(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    store.put_archive("churn:a", b"a" * 1000)
    store.put_archive("shared:x", b"x" * 10)
    store.new_version("churn", "churn:a", SPEC, {})
    store.new_version("churn", "shared:x", SPEC, {})
    store.new_version("other", "shared:x", SPEC, {})
    assert store.archive_path("churn:a").read_bytes() == b"a" * 1000
    store.delete("churn")
    assert not store.archive_path("churn:a").exists()
    assert store.archive_path("shared:x").exists()  # "other" still uses it
    assert not list(store.archives.glob(".incoming-*"))


def test_counters_follow_their_deployment(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    store.new_version("churn", "churn:a", SPEC, {})
    store.save_counters({"churn": b"saved", "gone": b"ignored"})
    assert store.counters() == {"churn": b"saved"}
    store.delete("churn")
    assert store.counters() == {}
