"""The store's streams: which broker streams each deployment's consumers read.

A part of :class:`~jupyter_deploy.control.store.Store` (it inherits these), kept apart so
each module stays one concept. A row is the desired state of one consumer group
(:class:`~jupyter_deploy.control.records.StreamRecord`); its URL never holds a password.
Deleting the deployment deletes its rows (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from .records import StreamRecord

STREAMS_SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    name TEXT NOT NULL REFERENCES deployments(name) ON DELETE CASCADE,
    key  TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (name, key)
);
"""


class StreamRows:
    """Stream rows of the store; the store supplies its connection, transactions and events."""

    _db: sqlite3.Connection
    _lock: Any  # the store's RLock
    _tx: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _event: Callable[[sqlite3.Connection, str, str, int | None, str], None]

    def streams(self, name: str | None = None) -> list[StreamRecord]:
        """Every recorded stream (of deployment ``name`` only, if given)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM streams WHERE ? IS NULL OR name = ? ORDER BY name, key",
                (name, name),
            ).fetchall()
        return [StreamRecord.from_dict(json.loads(data)) for (data,) in rows]

    def put_stream(self, rec: StreamRecord) -> bool:
        """Record ``rec`` (replacing the same group on the same input); False if the
        deployment does not exist."""
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM deployments WHERE name = ?", (rec.name,)).fetchone():
                return False
            db.execute("INSERT OR REPLACE INTO streams (name, key, data) VALUES (?, ?, ?)",
                       (rec.name, rec.key, json.dumps(rec.to_dict())))  # fmt: skip
            detail = f"started {rec.input} -> {rec.output} ({rec.consumers} consumers)"
            self._event(db, rec.name, "stream", rec.version, detail)
        return True

    def drop_stream(self, name: str, key: str) -> bool:
        with self._tx() as db:
            gone = db.execute("DELETE FROM streams WHERE name = ? AND key = ?",
                              (name, key)).rowcount  # fmt: skip
            if gone:
                self._event(db, name, "stream", None, f"stopped {key}")
        return bool(gone)
