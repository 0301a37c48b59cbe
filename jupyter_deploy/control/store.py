"""The durable desired state: one SQLite database on the head node.

Deployments, their versions (Bento tag, spec, metadata), which version is live, the
hashes of their keys (never a secret: :mod:`.keys`), the streams their consumers read
(:mod:`.streamrows`), the event history, the Bento
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
from dataclasses import replace
from pathlib import Path

from .keystore import KEYS_SCHEMA, KeyRows
from .records import Canary, DeploymentRecord, Event, Traffic, VersionRecord
from .streamrows import STREAMS_SCHEMA, StreamRows

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
CREATE TABLE IF NOT EXISTS canaries (
    name TEXT PRIMARY KEY REFERENCES deployments(name) ON DELETE CASCADE,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY REFERENCES deployments(name) ON DELETE CASCADE,
    saved REAL NOT NULL,
    data  BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS remembered (
    name   TEXT NOT NULL REFERENCES deployments(name) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (name, number)
);
"""


class Store(KeyRows, StreamRows):
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
        self._db.executescript(_SCHEMA + KEYS_SCHEMA + STREAMS_SCHEMA)

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
            keys = self._keys(self._db, name)
            canary = self._canary(self._db, name)
        traffic = Traffic.from_dict(json.loads(row[1])) if row[1] else None
        return DeploymentRecord(name, versions, row[0], events, traffic, canary, keys)

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
        self,
        name: str,
        version: int,
        event: str,
        detail: str = "",
        traffic: Traffic | None = None,
        canary: Canary | None = None,
    ) -> DeploymentRecord:
        """Make ``version`` live, with ``traffic`` (None: it takes every request).

        ``canary`` is a canary that starts with this traffic; without one, a running canary
        ends here: a person changed the traffic (promoted it, split, deployed, rolled back).
        """
        data = json.dumps(traffic.to_dict()) if traffic is not None else None
        with self._tx() as db:
            db.execute("UPDATE deployments SET live = ?, traffic = ? WHERE name = ?",
                       (version, data, name))  # fmt: skip
            running = self._canary(db, name)
            if canary is None and running is not None and running.state == "running":
                state = "promoted" if version == running.version and traffic is None else "stopped"
                canary = replace(running, state=state, ended=time.time(), reason=f"{event} by hand")
            if canary is not None:
                self._put_canary(db, name, canary)
            self._event(db, name, event, version, detail)
        return self._must(name)

    def canary_step(
        self,
        name: str,
        started: float,
        canary: Canary,
        live: int | None = None,
        traffic: Traffic | None = None,
        event: str = "",
    ) -> DeploymentRecord | None:
        """The canary controller's change, only if the canary started at ``started`` is still
        running (a person may have promoted, split or rolled back meanwhile): its new state,
        and with ``event`` the new live version and traffic. None if it was not applied."""
        with self._tx() as db:
            current = self._canary(db, name)
            if current is None or current.started != started or current.state != "running":
                return None
            self._put_canary(db, name, canary)
            if event:
                data = json.dumps(traffic.to_dict()) if traffic is not None else None
                db.execute("UPDATE deployments SET live = ?, traffic = ? WHERE name = ?",
                           (live, data, name))  # fmt: skip
                self._event(db, name, event, canary.version, canary.reason)
            if canary.state == "rolled_back":  # never split to it again without a redeploy
                (meta,) = db.execute("SELECT meta FROM versions WHERE name = ? AND version = ?",
                                     (name, canary.version)).fetchone()  # fmt: skip
                db.execute("UPDATE versions SET meta = ? WHERE name = ? AND version = ?",
                           (json.dumps({**json.loads(meta), "failed": canary.reason}), name,
                            canary.version))  # fmt: skip
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
    def save_counters(
        self,
        blobs: dict[str, bytes],
        chunks: dict[str, list[tuple[int, bytes]]] | None = None,
        first: dict[str, int] | None = None,
    ) -> None:
        """Each deployment's counters, with the new chunks of requests remembered for
        feedback; its chunks numbered below ``first[name]`` are deleted."""
        now = time.time()
        with self._tx() as db:
            for name, data in blobs.items():
                db.execute(
                    "INSERT OR REPLACE INTO counters (name, saved, data) "
                    "SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM deployments WHERE name = ?)",
                    (name, now, data, name),
                )
            for name, new in (chunks or {}).items():
                db.executemany(
                    "INSERT OR REPLACE INTO remembered (name, number, data) "
                    "SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM deployments WHERE name = ?)",
                    [(name, number, data, name) for number, data in new],
                )
            for name, number in (first or {}).items():
                db.execute("DELETE FROM remembered WHERE name = ? AND number < ?", (name, number))

    def counters(self) -> dict[str, bytes]:
        with self._lock:
            return dict(self._db.execute("SELECT name, data FROM counters").fetchall())

    def remembered(self) -> dict[str, list[tuple[int, bytes]]]:
        """Each deployment's saved chunks of requests remembered for feedback, in order."""
        out: dict[str, list[tuple[int, bytes]]] = {}
        with self._lock:
            rows = self._db.execute("SELECT name, number, data FROM remembered ORDER BY number")
            for name, number, data in rows.fetchall():
                out.setdefault(name, []).append((number, data))
        return out

    # -- helpers ------------------------------------------------------------------------
    @staticmethod
    def _canary(db: sqlite3.Connection, name: str) -> Canary | None:
        row = db.execute("SELECT data FROM canaries WHERE name = ?", (name,)).fetchone()
        return Canary.from_dict(json.loads(row[0])) if row else None

    @staticmethod
    def _put_canary(db: sqlite3.Connection, name: str, canary: Canary) -> None:
        db.execute("INSERT OR REPLACE INTO canaries (name, data) VALUES (?, ?)",
                   (name, json.dumps(canary.to_dict())))  # fmt: skip

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
