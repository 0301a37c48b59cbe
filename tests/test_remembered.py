"""Requests remembered for feedback: kept in chunks, saved once each, back after a restart.

The aggregator and the store are the real ones (the aggregator's actor body in process,
SQLite on disk); the registry's saver is what calls export() and save_counters().
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from jupyter_deploy.control.store import Store
from jupyter_deploy.monitoring import remembered
from jupyter_deploy.monitoring.aggregator import Aggregator, Saved
from jupyter_deploy.monitoring.metrics import Counts, Observed, Push
from jupyter_deploy.monitoring.quality import Quality
from jupyter_deploy.monitoring.remembered import Memory

REFERENCE = {"task": "classification", "columns": ["a"]}


def _push(agg: Aggregator, name: str, start: int, n: int) -> None:
    predictions = {f"r{i}": [i % 3] for i in range(start, start + n)}
    observed = Observed(predictions) if n else None  # what an idle replica pushes
    agg.push(name, 1, "replica-1", Push(Counts(requests=n), observed))


def _save(agg: Aggregator, store: Store) -> Saved:
    saved = agg.export()
    store.save_counters(saved.counters, saved.chunks, saved.first)
    return saved


def test_the_oldest_are_forgotten_a_chunk_at_a_time(monkeypatch: Any) -> None:
    monkeypatch.setattr(remembered, "CHUNK", 10)
    memory = Memory(keep=25)
    for i in range(100):
        memory.add(f"r{i}", (1, [i], None))
    assert 25 <= len(memory) < 25 + 10
    assert all(memory.get(f"r{i}") == (1, [i], None) for i in range(75, 100))
    assert memory.get("r0") is None and memory.get("r60") is None
    new, first = memory.unsaved()
    assert [n for n, _ in new] == sorted(n for n, _ in new) and new[0][0] == first
    assert memory.unsaved() == ([], first)  # nothing new: nothing to write


def test_each_chunk_is_saved_once_and_comes_back_after_a_restart(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    store.new_version("m", "m:a", {"name": "m"}, {})
    agg = Aggregator()
    agg.register("m", 1, REFERENCE)
    _push(agg, "m", 0, 3000)
    first = _save(agg, store)
    _push(agg, "m", 3000, 5)
    second = _save(agg, store)
    # The second save writes the 5 new ids, not the 3,005 again.
    assert len(first.chunks["m"]) == 1 and len(pickle.loads(first.chunks["m"][0][1])) == 3000
    assert [len(pickle.loads(blob)) for _, blob in second.chunks["m"]] == [5]
    assert len(second.counters["m"]) < len(first.chunks["m"][0][1]) / 10
    _push(agg, "m", 4000, 0)  # an idle second: nothing to save
    assert agg.export().counters == {}

    restarted = Aggregator()
    assert restarted.restore(Saved(store.counters(), store.remembered())) == ["m"]
    result = restarted.feedback("m", [{"request_id": "r1", "label": 1},
                                      {"request_id": "r3004", "label": 0}])  # fmt: skip
    assert result == {"matched": 2, "unknown": [], "wrong_length": []}
    # New ids after the restart go to a chunk of a new number: nothing saved is replaced.
    _push(restarted, "m", 5000, 2)
    third = _save(restarted, store)
    assert third.chunks["m"][0][0] > second.chunks["m"][0][0]
    assert sum(len(pickle.loads(b)) for _, b in store.remembered()["m"]) == 3007


def test_the_store_drops_forgotten_chunks_and_deleted_deployments(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(remembered, "CHUNK", 100)
    store = Store(tmp_path / "state.db")
    store.new_version("m", "m:a", {"name": "m"}, {})
    agg = Aggregator()
    agg.register("m", 1, REFERENCE)
    agg._quality("m").memory.keep = 250
    for start in range(0, 1000, 100):
        _push(agg, "m", start, 100)
        _save(agg, store)
    kept = store.remembered()["m"]
    assert 250 <= sum(len(pickle.loads(b)) for _, b in kept) < 350
    store.delete("m")
    assert store.remembered() == {} and store.counters() == {}


def test_counters_saved_before_the_chunks_still_restore() -> None:
    old = Quality()
    state = {k: v for k, v in old.__dict__.items() if k != "memory"}
    state["predictions"] = {"r1": (1, [2])}
    state["segment_rows"] = {"r1": [["a"]]}
    restored = Quality.__new__(Quality)
    restored.__setstate__(state)
    assert restored.memory.get("r1") == (1, [2], [["a"]])


@pytest.mark.parametrize("n", [0, 1])
def test_an_empty_memory_saves_nothing(n: int) -> None:
    memory = Memory()
    for i in range(n):
        memory.add(f"r{i}", (1, [0], None))
    new, first = memory.unsaved()
    assert len(new) == n and first == 0
