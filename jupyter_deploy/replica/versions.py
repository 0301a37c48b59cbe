"""The Bento versions one replica holds, and the routing table made of them.

Serve pushes a :class:`~jupyter_deploy.control.records.ServeTarget` to ``reconfigure()``;
:meth:`Versions.apply` loads what it needs that is not loaded yet (off the event loop),
then replaces the routing table in one assignment and drops what is no longer needed. A
target that fails to load leaves the old table serving and is reported with its error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..control.records import ReplicaReport, ServeTarget
from .loaded import LoadedVersion
from .router import Routing, routing

_log = logging.getLogger("ray.serve")


class Versions:
    """Loaded versions by number; :attr:`routing` is what requests read."""

    def __init__(
        self,
        name: str,
        load: Callable[[int, str], LoadedVersion],
        report: Callable[[ReplicaReport], None],
    ) -> None:
        self.name = name
        self._load = load
        self._report = report
        self.loaded: dict[int, LoadedVersion] = {}
        self.routing: Routing | None = None  # None until the first target is applied
        self._failed: str | None = None

    async def apply(self, target: ServeTarget) -> None:
        """Serve ``target``; raise only if there is nothing to serve yet."""
        key = target.key()
        if self.routing is not None and key == self.routing.key:
            self._tell()
            return
        fresh: dict[int, LoadedVersion] = {}
        try:
            for version in target.needed():
                if version not in self.loaded:
                    # Unpacking and importing a Bento takes a fraction of a second: off the
                    # loop, so requests go on being served by the old table meanwhile.
                    fresh[version] = await asyncio.to_thread(
                        self._load, version, target.tag_of(version)
                    )
        except Exception as exc:
            for state in fresh.values():
                state.unload()
            if self.routing is None:
                raise  # nothing to serve: Serve retries, then marks the version failed
            self._failed = key
            _log.exception("could not apply target %s of %s", key, self.name)
            self._tell(f"{type(exc).__name__}: {exc}")
            return
        loaded = {v: self.loaded.get(v) or fresh[v] for v in target.needed()}
        traffic = target.traffic
        table = routing(
            key, loaded, target.version,
            traffic.weights if traffic else None, traffic.sticky if traffic else None,
            traffic.shadow if traffic else None, traffic.shadow_rate if traffic else 0.0,
        )  # fmt: skip
        old, self.loaded, self.routing, self._failed = self.loaded, loaded, table, None
        for version, state in old.items():
            if version not in loaded:
                state.unload()
        self._tell()

    def _tell(self, error: str | None = None) -> None:
        table = self.routing
        assert table is not None
        self._report(ReplicaReport(table.primary.version, table.key, tuple(sorted(self.loaded)),
                                   self._failed, error, time.time()))  # fmt: skip
