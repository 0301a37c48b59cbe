"""The durable desired state: one SQLite database on the head node.

Deployments, their versions (Bento tag, spec, metadata), which version is live, the
hashes of their keys (never a secret: :mod:`.keys`), the event history, the Bento
archives (as files beside the database) and the last saved monitoring counters.
Everything in the cluster (the registry actor, Serve's applications, the replicas' loaded
versions, the aggregator) is a cache of this, rebuilt from it when the cluster starts
again (:mod:`jupyter_deploy.rollout.reconcile`).

One writer (the registry actor), WAL journal, every change one transaction: a crash at any
moment leaves the old state or the new one. ``synchronous=NORMAL`` in WAL mode can lose
the last transactions on a power cut but never corrupts the file; a process crash loses
nothing that was committed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .keys import FIRST_KEY, SCOPES, ApiKey, digest
from .records import DeploymentRecord, Event, Traffic, VersionRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    name    TEXT PRIMARY KEY,
    live    INTEGER,
    traffic TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    name      TEXT NOT NULL REFERENCES deployments(name) ON DELETE CASCADE,
    version   INTEGER NOT NULL,
    bento_tag TEXT NOT NULL,
    spec      TEXT NOT NULL,
    meta      TEXT NOT NULL,
    created   REAL NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    name    TEXT NOT NULL REFERENCES deployments(name) ON DELETE CASCADE,
    time    REAL NOT NULL,
    event   TEXT NOT NULL,
    version INTEGER,
    detail  TEXT NOT NULL DEFAULT ''
);
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
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY REFERENCES deployments(name) ON DELETE CASCADE,
    saved REAL NOT NULL,
    data  BLOB NOT NULL
);
"""


class Store:
    """The state database at ``path``; archives live in ``<path's folder>/archives``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.archives = self.path.parent / "archives"
        self.archives.mkdir(exist_ok=True, mode=0o700)
        # The actor's methods and its saver thread share one connection, one at a time.
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        os.chmod(self.path, 0o600)  # key hashes, payload settings, history: the owner's
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not left
        self._hash_old_tokens()
        self._db.executescript(_SCHEMA)

    def _hash_old_tokens(self) -> None:
        """A store from before keys kept each deployment's token in plain text: turn it
        into that deployment's first key (its hash), drop the column, rewrite the file."""
        columns = [r[1] for r in self._db.execute("PRAGMA table_info(deployments)")]
        if "token" not in columns:
            return
        self._db.executescript(_SCHEMA)
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

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction: all of it is committed, or none of it."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- reading ----------------------------------------------------------------------
    def get(self, name: str) -> DeploymentRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT live, traffic FROM deployments WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                return None
            versions = [
                VersionRecord(v, tag, json.loads(spec), created, json.loads(meta))
                for v, tag, spec, meta, created in self._db.execute(
                    "SELECT version, bento_tag, spec, meta, created FROM versions "
                    "WHERE name = ? ORDER BY version",
                    (name,),
                )
            ]
            events = [
                Event(*row)
                for row in self._db.execute(
                    "SELECT time, event, version, detail FROM events WHERE name = ? ORDER BY id",
                    (name,),
                )
            ]
            keys = [
                ApiKey(key, tuple(json.loads(scopes)), sha, created, expires, used)
                for key, sha, scopes, created, expires, used in self._db.execute(
                    "SELECT key, sha256, scopes, created, expires, last_used FROM keys "
                    "WHERE name = ? ORDER BY created, key",
                    (name,),
                )
            ]
        traffic = Traffic.from_dict(json.loads(row[1])) if row[1] else None
        return DeploymentRecord(name, versions, row[0], events, traffic, keys)

    def names(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT name FROM deployments ORDER BY name")]

    def records(self) -> list[DeploymentRecord]:
        return [rec for name in self.names() if (rec := self.get(name)) is not None]

    # -- changing ---------------------------------------------------------------------
    def new_version(
        self, name: str, bento_tag: str, spec: dict[str, object], meta: dict[str, object]
    ) -> DeploymentRecord:
        """Record a new version (not live yet); create the deployment if it is new."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO deployments (name, live, traffic, created) "
                "VALUES (?, NULL, NULL, ?)",
                (name, now),
            )
            (number,) = db.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE name = ?", (name,)
            ).fetchone()
            db.execute(
                "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
                (name, number, bento_tag, json.dumps(spec), json.dumps(meta), now),
            )
        return self._must(name)

    def set_live(
        self, name: str, version: int, event: str, detail: str = "", traffic: Traffic | None = None
    ) -> DeploymentRecord:
        """Make ``version`` live, with ``traffic`` (None: it takes every request)."""
        data = json.dumps(traffic.to_dict()) if traffic is not None else None
        with self._tx() as db:
            db.execute("UPDATE deployments SET live = ?, traffic = ? WHERE name = ?",
                       (version, data, name))  # fmt: skip
            self._event(db, name, event, version, detail)
        return self._must(name)

    def record_event(self, name: str, event: str, version: int | None, detail: str = "") -> None:
        with self._tx() as db:
            self._event(db, name, event, version, detail)

    def update_spec(self, name: str, version: int, spec: dict[str, object]) -> None:
        """A config-only change (the replica range) of a version."""
        with self._tx() as db:
            db.execute(
                "UPDATE versions SET spec = ? WHERE name = ? AND version = ?",
                (json.dumps(spec), name, version),
            )
            self._event(db, name, "scale", version, json.dumps(spec.get("autoscaling", {})))

    def drop_version(self, name: str, version: int) -> None:
        """Forget a version that never went live (its rollout failed)."""
        with self._tx() as db:
            db.execute("DELETE FROM versions WHERE name = ? AND version = ?", (name, version))
            (left,) = db.execute("SELECT COUNT(*) FROM versions WHERE name = ?", (name,)).fetchone()
            if not left:
                db.execute("DELETE FROM deployments WHERE name = ?", (name,))

    # -- keys (hashes only) -------------------------------------------------------------
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

    def delete(self, name: str) -> bool:
        """Drop a deployment and everything recorded about it; free unreferenced archives."""
        with self._tx() as db:
            gone = db.execute("DELETE FROM deployments WHERE name = ?", (name,)).rowcount > 0
        self.release_archives()
        return gone

    # -- Bento archives: files, never held in memory ------------------------------------
    def archive_path(self, tag: str) -> Path:
        return self.archives / (tag.replace(":", "-") + ".bento")

    def put_archive(self, tag: str, data: bytes) -> None:
        path = self.archive_path(tag)
        fd, tmp = tempfile.mkstemp(dir=self.archives, prefix=".incoming-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)  # atomic: a reader sees the whole archive or none

    def release_archives(self) -> list[str]:
        """Delete archive files no version refers to any more."""
        with self._lock:
            used = {self.archive_path(t).name for (t,) in self._db.execute(
                "SELECT DISTINCT bento_tag FROM versions")}  # fmt: skip
        freed = []
        for path in self.archives.glob("*.bento"):
            if path.name not in used:
                path.unlink(missing_ok=True)
                freed.append(path.name)
        return freed

    # -- monitoring counters, saved periodically ------------------------------------------
    def save_counters(self, blobs: dict[str, bytes]) -> None:
        now = time.time()
        with self._tx() as db:
            for name, data in blobs.items():
                db.execute(
                    "INSERT OR REPLACE INTO counters (name, saved, data) "
                    "SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM deployments WHERE name = ?)",
                    (name, now, data, name),
                )

    def counters(self) -> dict[str, bytes]:
        with self._lock:
            return dict(self._db.execute("SELECT name, data FROM counters").fetchall())

    # -- helpers ------------------------------------------------------------------------
    @staticmethod
    def _event(db: sqlite3.Connection, name: str, event: str, version: int | None,
               detail: str) -> None:  # fmt: skip
        db.execute(
            "INSERT INTO events (name, time, event, version, detail) VALUES (?, ?, ?, ?, ?)",
            (name, time.time(), event, version, detail),
        )

    def _must(self, name: str) -> DeploymentRecord:
        rec = self.get(name)
        assert rec is not None
        return rec

    def close(self) -> None:
        with self._lock:
            self._db.close()
