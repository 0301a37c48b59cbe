"""The store's keys: hashes, scopes and dates, never a secret (:mod:`.keys`).

A part of :class:`~jupyter_deploy.control.store.Store` (it inherits these), kept apart so
each module stays one concept: its table, its changes, and the one-time rewrite of a store
from before keys, whose deployments kept a token in plain text.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from .keys import FIRST_KEY, SCOPES, ApiKey, digest

KEYS_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    name      TEXT NOT NULL REFERENCES deployments(name) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    sha256    TEXT NOT NULL,
    scopes    TEXT NOT NULL,
    created   REAL NOT NULL,
    expires   REAL,
    last_used REAL,
    PRIMARY KEY (name, key)
);
"""


class KeyRows:
    """Key rows of the store; the store supplies its connection, transactions and events."""

    _db: sqlite3.Connection
    # The store's own: one transaction, and one line of a deployment's history.
    _tx: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _event: Callable[[sqlite3.Connection, str, str, int | None, str], None]

    @staticmethod
    def _keys(db: sqlite3.Connection, name: str) -> list[ApiKey]:
        return [
            ApiKey(key, tuple(json.loads(scopes)), sha, created, expires, used)
            for key, sha, scopes, created, expires, used in db.execute(
                "SELECT key, sha256, scopes, created, expires, last_used FROM keys "
                "WHERE name = ? ORDER BY created, key",
                (name,),
            )
        ]

    def add_key(self, name: str, key: ApiKey, first: bool = False) -> bool:
        """Add ``key`` to ``name``; False if the name is taken (with ``first``: if ``name``
        has any key, so only one kernel's first key is ever made)."""
        with self._tx() as db:
            if first and db.execute("SELECT 1 FROM keys WHERE name = ?", (name,)).fetchone():
                return False
            added = db.execute(
                "INSERT OR IGNORE INTO keys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (name, key.name, key.sha256, json.dumps(key.scopes), key.created, key.expires),
            ).rowcount
            if added:
                self._event(db, name, "key", None, f"created {key.name} ({', '.join(key.scopes)})")
        return bool(added)

    def revoke_key(self, name: str, key: str) -> bool:
        with self._tx() as db:
            gone = db.execute("DELETE FROM keys WHERE name = ? AND key = ?", (name, key)).rowcount
            if gone:
                self._event(db, name, "key", None, f"revoked {key}")
        return bool(gone)

    def keys_used(self, name: str, used: dict[str, float]) -> None:
        """Replicas' batched last-use times (the latest one wins)."""
        with self._tx() as db:
            db.executemany(
                "UPDATE keys SET last_used = MAX(COALESCE(last_used, 0), ?) "
                "WHERE name = ? AND key = ?",
                [(when, name, key) for key, when in used.items()],
            )

    def _hash_old_tokens(self) -> None:
        """A store from before keys kept each deployment's token in plain text: turn it
        into that deployment's first key (its hash), drop the column, rewrite the file."""
        columns = [r[1] for r in self._db.execute("PRAGMA table_info(deployments)")]
        if "token" not in columns:
            return
        self._db.executescript(KEYS_SCHEMA)
        with self._tx() as db:
            for name, token, created in db.execute(
                "SELECT name, token, created FROM deployments"
            ).fetchall():
                db.execute(
                    "INSERT OR IGNORE INTO keys VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                    (name, FIRST_KEY, digest(token), json.dumps(SCOPES), created),
                )
            db.execute("ALTER TABLE deployments DROP COLUMN token")
        self._db.execute("VACUUM")  # no page of the file keeps an old token
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
