"""The typed records of the desired state, as they cross process boundaries.

The store (:mod:`jupyter_deploy.control.store`) keeps them; the registry actor hands them to
drivers (Ray pickles dataclasses), and :class:`ServeTarget` is what Serve pushes to every
replica as its ``user_config``. Nobody passes these around as loose dicts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .keys import ApiKey, Grant


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
    versions: list[VersionRecord] = field(default_factory=list)
    live: int | None = None
    events: list[Event] = field(default_factory=list)
    traffic: Traffic | None = None  # None: the live version takes every request
    canary: Canary | None = None  # the last canary rollout, running or ended
    keys: list[ApiKey] = field(default_factory=list)  # hashed, never a secret

    def version(self, number: int) -> VersionRecord:
        return next(v for v in self.versions if v.version == number)

    @property
    def newest(self) -> VersionRecord:
        return self.versions[-1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the CLI's ``--json`` and the panel: no key, not even hashed."""
        data = asdict(self)
        data["keys"] = [k.name for k in self.keys]
        return data


@dataclass(frozen=True)
class Traffic:
    """How a deployment's requests are shared between its versions (its desired split).

    ``weights`` maps versions to shares that sum to 1; a request goes to one of them at
    random by weight, or, with ``sticky`` (a field of the instance) or an ``x-jd-key``
    header, by a stable hash of that key. ``shadow`` gets a copy of a share ``shadow_rate``
    of the requests after the caller's answer is sent; its answers only reach the log.
    """

    weights: dict[int, float]
    sticky: str | None = None
    shadow: int | None = None
    shadow_rate: float = 0.0

    def versions(self) -> list[int]:
        """Every version this traffic needs loaded, serving ones first."""
        out = sorted(v for v, w in self.weights.items() if w > 0)
        return out + ([self.shadow] if self.shadow is not None and self.shadow not in out else [])

    def to_dict(self) -> dict[str, Any]:
        return {"weights": {str(v): w for v, w in self.weights.items()}, "sticky": self.sticky,
                "shadow": self.shadow, "shadow_rate": self.shadow_rate}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Traffic:
        return cls({int(v): float(w) for v, w in data["weights"].items()}, data.get("sticky"),
                   data.get("shadow"), float(data.get("shadow_rate", 0.0)))  # fmt: skip


CANARY_STEPS = (0.1, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class CanaryPolicy:
    """How a canary steps up: its shares, how often it is judged, and what fails it.

    Every ``interval_s`` the canary's requests of that interval are compared with the
    baseline's: more errors than the baseline by over ``max_error_rate``, or a p95 latency
    over ``max_latency_ratio`` times the baseline's, rolls it back; fewer than
    ``min_requests`` requests means wait for more (never promote on no evidence).
    """

    steps: tuple[float, ...] = CANARY_STEPS
    interval_s: float = 60.0
    max_error_rate: float = 0.01
    max_latency_ratio: float = 1.5
    min_requests: int = 50

    @classmethod
    def parse(cls, option: float | dict[str, Any]) -> CanaryPolicy:
        """``canary=0.1`` (the first share; the default steps above it follow) or a dict."""
        from ..errors import InvalidSpecError

        if isinstance(option, bool) or not isinstance(option, int | float | dict):
            raise InvalidSpecError(f"canary= takes a share or a dict of settings, not {option!r}.")
        data = {"steps": _steps_from(option)} if not isinstance(option, dict) else dict(option)
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise InvalidSpecError(
                f"Unknown canary settings {unknown}; known: {sorted(cls.__dataclass_fields__)}."
            )
        try:
            policy = cls(
                **{**data, "steps": tuple(float(s) for s in data.get("steps", CANARY_STEPS))}
            )
        except (TypeError, ValueError) as err:
            raise InvalidSpecError(f"canary settings: {err}") from None
        policy.check()
        return policy

    def check(self) -> None:
        from ..errors import InvalidSpecError

        steps = self.steps
        if not steps or any(not 0 < s <= 1 for s in steps) or list(steps) != sorted(set(steps)):
            raise InvalidSpecError(f"Canary steps must rise within (0, 1], got {list(steps)}.")
        if steps[-1] != 1.0:
            raise InvalidSpecError(
                f"The last canary step must be 1.0 (promotion), got {steps[-1]}."
            )
        if len(steps) < 2:
            raise InvalidSpecError("A canary needs a first share below 1.0; use promote() instead.")
        if self.interval_s < 1 or self.min_requests < 1 or self.max_latency_ratio <= 1:
            raise InvalidSpecError("Canary interval_s and min_requests must be >= 1 and "
                                   "max_latency_ratio > 1.")  # fmt: skip
        if not 0 <= self.max_error_rate < 1:
            raise InvalidSpecError(f"max_error_rate must be in [0, 1), got {self.max_error_rate}.")


def _steps_from(share: float) -> tuple[float, ...]:
    return (float(share), *(s for s in CANARY_STEPS if s > share))


@dataclass(frozen=True)
class Canary:
    """A canary rollout of ``version`` against ``baseline``, as the store keeps it.

    ``state`` is ``running`` (the controller in the cluster judges it), ``promoted``,
    ``rolled_back`` (``reason`` says why) or ``stopped`` (a person changed the traffic).
    """

    version: int
    baseline: int
    policy: CanaryPolicy
    started: float
    step: int = 0  # index into policy.steps
    step_started: float = 0.0
    state: str = "running"
    reason: str = ""
    ended: float | None = None

    @property
    def share(self) -> float:
        return self.policy.steps[self.step]

    @property
    def next_decision(self) -> float | None:
        """When the controller judges the current step next (None once it ended)."""
        return self.step_started + self.policy.interval_s if self.state == "running" else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["policy"]["steps"] = list(self.policy.steps)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Canary:
        policy = dict(data["policy"])
        policy["steps"] = tuple(policy["steps"])
        return cls(**{**data, "policy": CanaryPolicy(**policy)})


@dataclass(frozen=True)
class ServeTarget:
    """What every replica of a deployment must serve: Serve's ``user_config`` for it.

    Serve pushes it to running replicas through ``reconfigure()`` and hands it to new ones
    at start, so no replica asks anyone which version to load. ``version`` is the live
    version (the baseline of a split); ``bentos`` names the Bento of every version the
    traffic needs; ``traffic`` is None when the live version takes every request. ``keys``
    are the hashes of the keys requests may carry (a revoke is a new target, in place).
    """

    version: int
    bento_tag: str
    bentos: dict[int, str] = field(default_factory=dict)
    traffic: Traffic | None = None
    keys: tuple[Grant, ...] = ()

    def tag_of(self, version: int) -> str:
        return self.bento_tag if version == self.version else self.bentos[version]

    def needed(self) -> list[int]:
        """The versions a replica must hold loaded for this target."""
        if self.traffic is None:
            return [self.version]
        return sorted(set(self.traffic.versions()) | {self.version})

    def key(self) -> str:
        """Identity of this exact target: replicas report the key they applied."""
        text = json.dumps(self.to_config(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"version": self.version, "bento_tag": self.bento_tag}
        if self.traffic is not None:
            config["bentos"] = {str(v): t for v, t in sorted(self.bentos.items())}
            config["traffic"] = self.traffic.to_dict()
        if self.keys:
            config["keys"] = [g.to_config() for g in self.keys]
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ServeTarget:
        traffic = config.get("traffic")
        return cls(int(config["version"]), str(config["bento_tag"]),
                   {int(v): str(t) for v, t in config.get("bentos", {}).items()},
                   Traffic.from_dict(traffic) if traffic else None,
                   tuple(Grant.from_config(g) for g in config.get("keys", ())))  # fmt: skip


@dataclass(frozen=True)
class ReplicaReport:
    """A replica's answer to a target: the target it applied (by key) and the versions it
    holds, or the target it failed to apply and why (it then keeps serving the old one)."""

    version: int
    applied: str = ""
    loaded: tuple[int, ...] = ()
    failed: str | None = None
    error: str | None = None
    time: float = 0.0


@dataclass(frozen=True)
class StreamRecord:
    """A stream a deployment consumes, as the store keeps it (its desired state).

    ``url`` never holds a password: ``password_env`` names the environment variable the
    process that starts (or restores) the consumers reads it from. ``version`` None means
    the consumers follow the deployment's live version and split.
    """

    name: str  # the deployment
    url: str
    input: str
    output: str
    group: str = "jupyter_deploy"
    dead_letter: str = ""
    consumers: int = 1
    batch: int = 256
    method: str = "predict"
    version: int | None = None
    claim_idle_ms: int = 30_000
    password_env: str = ""
    started: float = 0.0

    @property
    def key(self) -> str:
        """Its identity within the deployment: one group reading one input stream."""
        return f"{self.input}/{self.group}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)
