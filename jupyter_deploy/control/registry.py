"""The cluster-side registry: Bento archives and each deployment's version history.

One detached, named Ray actor holds them, so every kernel, the CLI and the panel see the
same deployments, and replicas on any node fetch their Bento from it rather than from a
path that exists only on the kernel's machine. It lives as long as the cluster.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

REGISTRY_NAME = "jupyter_deploy_registry"


@dataclass
class VersionRecord:
    """One version of a deployment: which Bento, with which spec, and when."""

    version: int
    bento_tag: str
    spec: dict[str, Any]
    created: float
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class DeploymentRecord:
    """A deployment's history; ``live`` is the version that serves traffic."""

    name: str
    token: str
    versions: list[VersionRecord] = field(default_factory=list)
    live: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def version(self, number: int) -> VersionRecord:
        return next(v for v in self.versions if v.version == number)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentRecord:
        versions = [VersionRecord(**v) for v in data["versions"]]
        return cls(data["name"], data["token"], versions, data["live"], data["events"])


class Registry:
    """Actor body. Every method is quick; Ray runs them one at a time (no locks needed)."""

    def __init__(self) -> None:
        self._archives: dict[str, bytes] = {}
        self._deployments: dict[str, DeploymentRecord] = {}
        # Which version each deployment's replicas should load, and what each replica
        # reports back: the in-place switch protocol of serving.switch_in_place().
        self._targets: dict[str, dict[str, Any]] = {}
        self._acks: dict[str, dict[str, dict[str, Any]]] = {}

    # -- Bento archives ---------------------------------------------------------------
    def has_archive(self, tag: str) -> bool:
        return tag in self._archives

    def put_archive(self, tag: str, data: bytes) -> None:
        self._archives[tag] = data

    def get_archive(self, tag: str) -> bytes | None:
        return self._archives.get(tag)

    # -- deployments ------------------------------------------------------------------
    def get(self, name: str) -> dict[str, Any] | None:
        rec = self._deployments.get(name)
        return rec.to_dict() if rec else None

    def list(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self._deployments.values()]

    def new_version(
        self, name: str, bento_tag: str, spec: dict[str, Any], meta: dict[str, Any]
    ) -> dict[str, Any]:
        """Record a new version (not live yet); create the deployment and its token."""
        rec = self._deployments.get(name)
        if rec is None:
            rec = DeploymentRecord(name=name, token=secrets.token_urlsafe(24))
            self._deployments[name] = rec
        number = max((v.version for v in rec.versions), default=0) + 1
        rec.versions.append(VersionRecord(number, bento_tag, spec, time.time(), meta))
        return rec.to_dict()

    def set_live(self, name: str, version: int, event: str) -> dict[str, Any]:
        rec = self._deployments[name]
        rec.live = version
        rec.events.append({"time": time.time(), "event": event, "version": version})
        return rec.to_dict()

    def update_spec(self, name: str, version: int, spec: dict[str, Any]) -> None:
        """Record a config-only change (the replica range) of a live version."""
        self._deployments[name].version(version).spec = spec

    def drop_version(self, name: str, version: int) -> None:
        """Forget a version that never went live (its rollout failed)."""
        rec = self._deployments.get(name)
        if rec is None:
            return
        rec.versions = [v for v in rec.versions if v.version != version]
        if not rec.versions:
            del self._deployments[name]

    def delete(self, name: str) -> bool:
        self._targets.pop(name, None)
        self._acks.pop(name, None)
        return self._deployments.pop(name, None) is not None

    # -- in-place version switches ----------------------------------------------------
    def set_target(self, name: str, target: dict[str, Any]) -> None:
        """``target``: version, bento_tag and code key the replicas of ``name`` must serve."""
        self._targets[name] = target

    def target(self, name: str) -> dict[str, Any] | None:
        return self._targets.get(name)

    def ack(self, name: str, replica: str, report: dict[str, Any]) -> None:
        """A replica's report: the version it serves, and the last version it failed to load."""
        self._acks.setdefault(name, {})[replica] = {**report, "time": time.time()}

    def acks(self, name: str) -> dict[str, dict[str, Any]]:
        return dict(self._acks.get(name, {}))


def handle(create: bool = True) -> Any:
    """The registry actor of the connected cluster (created on first use)."""
    from .._ray import named_actor

    return named_actor(Registry, REGISTRY_NAME, create)
