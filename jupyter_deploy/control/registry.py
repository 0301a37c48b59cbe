"""The registry actor: the one writer of the durable store, on the head node.

Every kernel, the CLI and the panel's child read and change the desired state through this
detached actor, so there is exactly one SQLite writer (:mod:`jupyter_deploy.control.store`).
It keeps nothing that matters in memory: archives are files, records are rows, and a new
registry (after a crash or a cluster restart) opens the same database and carries on.

Two things it holds only in memory, because they describe the cluster as it is rather than
as it should be: the replicas' reports on the version they serve (for readiness), and the
saver thread that copies the aggregator's counters into the store every :data:`SAVE_S`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from .keys import ApiKey
from .records import Canary, DeploymentRecord, ReplicaReport, StreamRecord, Traffic
from .store import Store

REGISTRY_NAME = "jupyter_deploy_registry"
SAVE_S = 5.0  # counters lost in a crash: at most this much (the issue allows 10 s)
_log = logging.getLogger(__name__)


class Registry:
    """Actor body. Ray runs its methods one at a time; the saver thread shares the store's lock."""

    def __init__(self, path: str) -> None:
        self._store = Store(path)
        self._acks: dict[str, dict[str, ReplicaReport]] = {}
        self._restored = False
        threading.Thread(target=self._save_forever, name="jd-counters", daemon=True).start()

    # -- desired state ------------------------------------------------------------------
    def get(self, name: str) -> DeploymentRecord | None:
        return self._store.get(name)

    def records(self) -> list[DeploymentRecord]:
        return self._store.records()

    def new_version(
        self, name: str, bento_tag: str, spec: dict[str, Any], meta: dict[str, Any]
    ) -> DeploymentRecord:
        return self._store.new_version(name, bento_tag, spec, meta)

    def set_live(
        self,
        name: str,
        version: int,
        event: str,
        detail: str = "",
        traffic: Traffic | None = None,
        canary: Canary | None = None,
    ) -> DeploymentRecord:
        return self._store.set_live(name, version, event, detail, traffic, canary)

    def canary_step(
        self,
        name: str,
        started: float,
        canary: Canary,
        live: int | None = None,
        traffic: Traffic | None = None,
        event: str = "",
    ) -> DeploymentRecord | None:
        return self._store.canary_step(name, started, canary, live, traffic, event)

    def record_event(self, name: str, event: str, version: int | None, detail: str = "") -> None:
        self._store.record_event(name, event, version, detail)

    def update_spec(self, name: str, version: int, spec: dict[str, Any]) -> None:
        self._store.update_spec(name, version, spec)

    def drop_version(self, name: str, version: int) -> None:
        self._store.drop_version(name, version)

    # -- keys: hashes in, hashes out; a secret never reaches this actor -------------------
    def add_key(self, name: str, key: ApiKey, first: bool = False) -> DeploymentRecord | None:
        """The record with ``key`` added, or None if it could not be (name taken)."""
        return self._store.get(name) if self._store.add_key(name, key, first) else None

    def revoke_key(self, name: str, key: str) -> DeploymentRecord | None:
        return self._store.get(name) if self._store.revoke_key(name, key) else None

    def keys_used(self, name: str, used: dict[str, float]) -> None:
        self._store.keys_used(name, used)

    # -- streams its consumers read (the URL holds no password) ---------------------------
    def streams(self, name: str | None = None) -> list[StreamRecord]:
        return self._store.streams(name)

    def put_stream(self, rec: StreamRecord) -> bool:
        return self._store.put_stream(rec)

    def drop_stream(self, name: str, key: str) -> bool:
        return self._store.drop_stream(name, key)

    def delete(self, name: str) -> bool:
        self._acks.pop(name, None)
        return self._store.delete(name)

    # -- Bento archives (files beside the database) ----------------------------------------
    def has_archive(self, tag: str) -> bool:
        return self._store.archive_path(tag).exists()

    def put_archive(self, tag: str, data: bytes) -> None:
        self._store.put_archive(tag, data)

    def get_archive(self, tag: str) -> bytes | None:
        """The archive's bytes, read for this call only (replicas on any node unpack it)."""
        path = self._store.archive_path(tag)
        return path.read_bytes() if path.exists() else None

    # -- what replicas report ---------------------------------------------------------------
    def ack(self, name: str, replica: str, report: ReplicaReport) -> None:
        self._acks.setdefault(name, {})[replica] = report

    def acks(self, name: str) -> dict[str, ReplicaReport]:
        return dict(self._acks.get(name, {}))

    # -- monitoring counters -------------------------------------------------------------
    def restore_counters(self) -> list[str]:
        """Hand the saved counters to a new aggregator, once per registry (cluster start)."""
        if self._restored:
            return []
        import ray

        from ..monitoring.aggregator import Saved, handle

        self._restored = True
        blobs = self._store.counters()
        saved = Saved(blobs, self._store.remembered())
        return ray.get(handle().restore.remote(saved)) if blobs else []

    def checkpoint(self) -> int:
        """Save every deployment's counters now (before a clean stop). Returns how many."""
        return self._save(everything=True)

    def _save(self, everything: bool = False) -> int:
        import ray

        from ..monitoring.aggregator import handle

        if not self._restored:  # saving an empty new aggregator would overwrite the old counts
            return 0
        saved = ray.get(handle().export.remote(everything), timeout=30)
        if saved.counters:
            self._store.save_counters(saved.counters, saved.chunks, saved.first)
        return len(saved.counters)

    def _save_forever(self) -> None:
        while True:
            time.sleep(SAVE_S)
            try:
                self._save()
            except Exception:  # the aggregator restarting must not stop the saver
                _log.warning("could not save the monitoring counters", exc_info=True)

    def pid(self) -> int:
        return os.getpid()


def handle(create: bool = True, path: str | None = None) -> Any:
    """The registry actor of the connected cluster (created on first use).

    ``path`` is the state database, ``Settings.state_path`` unless given; it only matters
    when this call creates the actor.
    """
    from .._ray import named_actor

    if create and path is None:
        from ..settings import Settings

        path = str(Settings.from_env().state_path)
    return named_actor(Registry, REGISTRY_NAME, create, path)
