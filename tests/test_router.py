"""The split's decision logic: weights, stable sticky hashing, parsing of shares."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from jupyter_deploy.client.traffic import parse_shares
from jupyter_deploy.control.records import ServeTarget, Traffic
from jupyter_deploy.errors import InvalidSpecError
from jupyter_deploy.replica.router import routing, unit


def _state(version: int) -> Any:
    columns = [SimpleNamespace(name="customer_id"), SimpleNamespace(name="x")]
    return SimpleNamespace(version=version, runtime=SimpleNamespace(
        schema=SimpleNamespace(columns=columns)))  # fmt: skip


LOADED = {1: _state(1), 2: _state(2)}


def test_random_split_follows_the_weights() -> None:
    random.seed(7)
    table = routing("k", LOADED, 1, {1: 0.9, 2: 0.1}, None, None, 0.0)
    picks = Counter(table.pick(b"{}", None).version for _ in range(20_000))
    assert abs(picks[2] / 20_000 - 0.1) < 0.01


def test_sticky_keys_stay_and_spread() -> None:
    table = routing("k", LOADED, 1, {1: 0.5, 2: 0.5}, "customer_id", None, 0.0)
    first = {}
    for i in range(300):
        body = f'{{"instances": [{{"customer_id": {i}, "x": 1.0}}]}}'.encode()
        first[i] = table.pick(body, None).version
        assert all(table.pick(body, None).version == first[i] for _ in range(3))
    assert 100 < sum(v == 2 for v in first.values()) < 200
    row_form = b'{"instances": [[17, 1.0]]}'  # the same key in row form
    assert table.pick(row_form, None).version == first[17]
    assert table.pick(b"{}", "17").version == first[17]  # the x-jd-key header wins


def test_the_hash_is_the_same_in_another_process() -> None:
    code = "from jupyter_deploy.replica.router import unit; print(repr(unit('customer-42')))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": "123"})  # fmt: skip
    assert float(other.stdout) == unit("customer-42")


def test_one_version_means_no_split() -> None:
    table = routing("k", LOADED, 1, {2: 1.0}, None, None, 0.0)
    assert not table.split and table.pick(b"{}", None).version == 2


def test_targets_round_trip_and_name_what_replicas_load() -> None:
    traffic = Traffic({1: 0.9, 2: 0.1}, "customer_id", None, 0.0)
    target = ServeTarget(1, "m:a", {1: "m:a", 2: "m:b"}, traffic)
    again = ServeTarget.from_config(target.to_config())
    assert again == target and again.key() == target.key()
    assert target.needed() == [1, 2] and target.tag_of(2) == "m:b"
    assert ServeTarget(1, "m:a").key() != target.key()


def test_shares_are_parsed_in_percent() -> None:
    assert parse_shares(["1=90", "v2=10"]) == {1: 0.9, 2: 0.1}
    with pytest.raises(InvalidSpecError, match="VERSION=PERCENT"):
        parse_shares(["1:90"])
