"""The typed records of the desired state, as they cross process boundaries.

The store (:mod:`jupyter_deploy.control.store`) keeps them; the registry actor hands them to
drivers (Ray pickles dataclasses), and :class:`ServeTarget` is what Serve pushes to every
replica as its ``user_config``. Nobody passes these around as loose dicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class VersionRecord:
    """One version of a deployment: which Bento, with which spec, and when."""

    version: int
    bento_tag: str
    spec: dict[str, Any]
    created: float
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Event:
    """One line of a deployment's history (deploy, rollback, restore, scale...)."""

    time: float
    event: str
    version: int | None
    detail: str = ""


@dataclass
class DeploymentRecord:
    """A deployment's desired state; ``live`` is the version that serves traffic."""

    name: str
    token: str
    versions: list[VersionRecord] = field(default_factory=list)
    live: int | None = None
    events: list[Event] = field(default_factory=list)

    def version(self, number: int) -> VersionRecord:
        return next(v for v in self.versions if v.version == number)

    @property
    def newest(self) -> VersionRecord:
        return self.versions[-1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the CLI's ``--json`` and the panel."""
        return asdict(self)


@dataclass(frozen=True)
class ServeTarget:
    """What every replica of a deployment must serve: Serve's ``user_config`` for it.

    Serve pushes it to running replicas through ``reconfigure()`` and hands it to new ones
    at start, so no replica asks anyone which version to load.
    """

    version: int
    bento_tag: str

    def to_config(self) -> dict[str, Any]:
        return {"version": self.version, "bento_tag": self.bento_tag}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ServeTarget:
        return cls(int(config["version"]), str(config["bento_tag"]))


@dataclass(frozen=True)
class ReplicaReport:
    """A replica's answer to a target: the version it serves, the one it failed to load."""

    version: int
    failed: int | None = None
    error: str | None = None
    time: float = 0.0
