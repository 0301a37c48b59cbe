"""Keys in the durable store: only hashes, scopes and dates; an old store's plain tokens
become hashed keys. Real SQLite files, no cluster."""

from __future__ import annotations

import datetime
import sqlite3
from pathlib import Path

import pytest

from jupyter_deploy.control.keys import SCOPES, ApiKey, digest
from jupyter_deploy.control.store import Store
from jupyter_deploy.errors import InvalidSpecError

SPEC = {"name": "churn"}


def _bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.glob("state.db*"))


def test_a_key_is_stored_as_its_hash_with_scopes_and_dates(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    store.new_version("churn", "churn:a", SPEC, {})
    key, secret = ApiKey.make("mobile", ["predict"], datetime.timedelta(days=30))
    assert store.add_key("churn", key) is True
    assert store.add_key("churn", ApiKey.make("mobile", "metrics")[0]) is False  # name taken
    first, _ = ApiKey.make("default", SCOPES)
    assert store.add_key("churn", first, first=True) is False  # it has a key already
    (kept,) = store.get("churn").keys  # type: ignore[union-attr]
    assert kept.sha256 == digest(secret) and kept.scopes == ("predict",)
    assert 29.9 < (kept.expires - kept.created) / 86400 < 30.1  # type: ignore[operator]
    store.keys_used("churn", {"mobile": 100.0})
    store.keys_used("churn", {"mobile": 50.0})  # an older report never goes back in time
    assert store.get("churn").keys[0].last_used == 100.0  # type: ignore[union-attr]
    assert secret.encode() not in _bytes(tmp_path)
    assert store.revoke_key("churn", "mobile") is True and store.get("churn").keys == []  # type: ignore[union-attr]
    assert store.revoke_key("churn", "mobile") is False
    events = [e.detail for e in store.get("churn").events]  # type: ignore[union-attr]
    assert events == ["created mobile (predict)", "revoked mobile"]


def test_scopes_names_and_expiry_are_checked() -> None:
    with pytest.raises(InvalidSpecError, match="Scopes are some of"):
        ApiKey.make("x", ["predict", "admin"])
    with pytest.raises(InvalidSpecError, match="Scopes"):
        ApiKey.make("x", [])
    with pytest.raises(InvalidSpecError, match="positive duration"):
        ApiKey.make("x", "predict", datetime.timedelta(days=-1))
    with pytest.raises(InvalidSpecError, match="1 to 64"):
        ApiKey.make("", "predict")
    key, _ = ApiKey.make("x", ["metrics", "predict"], 0.001)
    assert key.scopes == ("predict", "metrics") and key.expired(key.created + 1)
    assert "sha256" not in key.public() and "secret" not in str(key.public())


def test_an_old_store_with_plain_tokens_is_rewritten_with_hashes(tmp_path: Path) -> None:
    path, token = tmp_path / "state.db", "plain-old-token-0123456789abcdef"
    old = sqlite3.connect(path)
    old.executescript(
        "PRAGMA journal_mode=WAL;"
        "CREATE TABLE deployments (name TEXT PRIMARY KEY, token TEXT NOT NULL, live INTEGER,"
        " traffic TEXT, created REAL NOT NULL);"
        f"INSERT INTO deployments VALUES ('churn', '{token}', NULL, NULL, 1.0);"
    )
    old.commit()
    old.close()
    assert token.encode() in _bytes(tmp_path)
    store = Store(path)
    (key,) = store.get("churn").keys  # type: ignore[union-attr]
    assert (key.name, key.scopes, key.sha256) == ("default", SCOPES, digest(token))
    store.close()
    assert token.encode() not in _bytes(tmp_path)  # not even in a free page or the WAL
