"""The typed deployment spec that travels from every front door to the cluster.

The magics, the Python API, the CLI and the panel all build a :class:`DeploymentSpec`
and hand it to :func:`jupyter_deploy.api.deploy`; the serving layer turns it into Ray
Serve options, and the registry stores it as JSON beside each version.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import InvalidSpecError

# A deployment name is also its route (/<name>) and part of its Bento tag, so it must be
# a safe URL segment and a valid BentoML name: lowercase letters, digits, - and _.
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# What runs the model in the replicas: "python" calls the captured object's predict,
# "onnx" its ONNX graph in onnxruntime (converted and parity-checked at deploy time).
RUNTIMES = ("python", "onnx")


def _finite(value: object) -> bool:
    """A real number (not a bool), neither NaN nor infinite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature counts as drifted.

    A feature is flagged when its window holds at least ``min_count`` live values **and**
    its PSI is at or above ``psi`` **and** its test's p-value is below ``p_value``.
    """

    psi: float = 0.2
    p_value: float = 0.01
    min_count: int = 30

    def validate(self) -> None:
        """Raise :class:`~jupyter_deploy.errors.InvalidSpecError` on a nonsensical threshold."""
        if not (_finite(self.psi) and self.psi > 0):
            raise InvalidSpecError(f"drift psi threshold must be a number > 0, got {self.psi!r}")
        if not (_finite(self.p_value) and 0 < self.p_value < 1):
            raise InvalidSpecError(
                f"drift p_value threshold must be between 0 and 1, got {self.p_value!r}"
            )
        if not (isinstance(self.min_count, int) and not isinstance(self.min_count, bool)) or (
            self.min_count < 1
        ):
            raise InvalidSpecError(
                f"drift min_count must be an integer >= 1, got {self.min_count!r}"
            )


@dataclass(frozen=True)
class FairnessThresholds:
    """When a gap between the values of a segment column is flagged.

    Among the values with at least ``min_count`` rows in the window: the demographic
    parity difference (the largest difference between two values' shares of one
    predicted class) at or above ``parity_gap``, or among those with at least
    ``min_count`` labels, the accuracy difference at or above ``accuracy_gap``.
    """

    parity_gap: float = 0.1
    accuracy_gap: float = 0.1
    min_count: int = 30

    def validate(self) -> None:
        for name in ("parity_gap", "accuracy_gap"):
            value = getattr(self, name)
            if not (_finite(value) and 0 < value <= 1):
                raise InvalidSpecError(f"fairness {name} must be in (0, 1], got {value!r}")
        if (
            isinstance(self.min_count, bool)
            or not isinstance(self.min_count, int)
            or (self.min_count < 1)
        ):
            raise InvalidSpecError(f"fairness min_count must be an integer >= 1, got "
                                   f"{self.min_count!r}")  # fmt: skip


@dataclass(frozen=True)
class Autoscaling:
    """Ray Serve autoscaling: replicas between min and max, scaled on ongoing requests."""

    min_replicas: int = 1
    max_replicas: int = 2
    target_ongoing_requests: float = 8.0
    # Ray's defaults wait 30 s / 600 s; a notebook user wants to see scaling happen.
    upscale_delay_s: float = 5.0
    downscale_delay_s: float = 60.0

    def validate(self) -> None:
        if self.min_replicas < 0:
            raise InvalidSpecError(f"min_replicas must be >= 0, got {self.min_replicas}.")
        if self.max_replicas < max(1, self.min_replicas):
            raise InvalidSpecError(
                f"max_replicas ({self.max_replicas}) must be >= 1 and >= min_replicas "
                f"({self.min_replicas})."
            )
        if self.target_ongoing_requests <= 0:
            raise InvalidSpecError("target_ongoing_requests must be > 0.")


@dataclass(frozen=True)
class Resources:
    """Per-replica resources requested from Ray."""

    num_cpus: float = 0.5
    num_gpus: float = 0.0
    # Custom Ray resources, e.g. {"worker_node": 0.01} to pin replicas to some nodes.
    custom: dict[str, float] = field(default_factory=dict)
    # Concurrent requests one replica accepts before Ray queues them elsewhere.
    max_ongoing_requests: int = 64

    def validate(self) -> None:
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise InvalidSpecError("num_cpus and num_gpus must be >= 0.")
        if self.max_ongoing_requests < 1:
            raise InvalidSpecError("max_ongoing_requests must be >= 1.")


@dataclass(frozen=True)
class DeploymentSpec:
    """Everything that defines one deployment, except the model itself."""

    name: str
    autoscaling: Autoscaling = field(default_factory=Autoscaling)
    resources: Resources = field(default_factory=Resources)
    auth: bool = True
    # Largest batch one request may carry; larger ones get 413.
    max_batch_rows: int = 10_000
    # Replicas count every request and push the counts to the cluster's aggregator.
    monitoring: bool = True
    # Share of requests written to the payload log (0 turns it off; needs monitoring).
    log_sample_rate: float = 1.0
    # Overrides of the drift thresholds (psi, p_value, min_count): drift.DriftThresholds.
    drift: dict[str, Any] = field(default_factory=dict)
    # Days of payload log kept; older day files are deleted by the log actor.
    log_retention_days: int = 30
    # Request fields (column names) dropped from logged bodies before they leave a replica.
    log_redact: tuple[str, ...] = ()
    # Seconds an explanation may take before the caller gets 503 with the reason.
    explain_timeout_s: float = 5.0
    # Rows of live predict traffic each replica explains per second for global importance
    # (mean |contribution| per column, beside the deploy-time sample's); 0 turns it off.
    importance_rows_per_s: float = 2.0
    # Input columns whose values split the monitoring (counts, predictions, accuracy, drift).
    segments: tuple[str, ...] = ()
    # Overrides of the segment gap thresholds (parity_gap, accuracy_gap, min_count).
    fairness: dict[str, Any] = field(default_factory=dict)
    # What runs the model in the replicas: one of RUNTIMES.
    runtime: str = "python"

    def __post_init__(self) -> None:
        validate_name(self.name)
        self.autoscaling.validate()
        self.resources.validate()
        if self.max_batch_rows < 1:
            raise InvalidSpecError("max_batch_rows must be >= 1.")
        if not 0.0 <= self.log_sample_rate <= 1.0:
            raise InvalidSpecError(
                f"log_sample_rate must be in [0, 1], got {self.log_sample_rate}."
            )
        _check_log_privacy(self)
        _check_explain_and_segments(self)
        if self.runtime not in RUNTIMES:
            raise InvalidSpecError(
                f"Unknown runtime {self.runtime!r}: use {' or '.join(map(repr, RUNTIMES))}."
            )
        if self.drift:
            try:
                DriftThresholds(**self.drift).validate()
            except TypeError:
                raise InvalidSpecError(
                    f"Unknown drift threshold in {sorted(self.drift)}; use psi, p_value, min_count."
                ) from None

    @property
    def route(self) -> str:
        return f"/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentSpec:
        return cls(
            name=data["name"],
            autoscaling=Autoscaling(**data.get("autoscaling", {})),
            resources=Resources(**data.get("resources", {})),
            auth=data.get("auth", True),
            max_batch_rows=data.get("max_batch_rows", 10_000),
            monitoring=data.get("monitoring", True),
            log_sample_rate=data.get("log_sample_rate", 1.0),
            drift=dict(data.get("drift", {})),
            log_retention_days=data.get("log_retention_days", 30),
            log_redact=tuple(data.get("log_redact", ())),
            explain_timeout_s=data.get("explain_timeout_s", 5.0),
            importance_rows_per_s=data.get("importance_rows_per_s", 2.0),
            segments=tuple(data.get("segments", ())),
            fairness=dict(data.get("fairness", {})),
            runtime=data.get("runtime", "python"),
        )


def _check_log_privacy(spec: DeploymentSpec) -> None:
    days = spec.log_retention_days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36_500:
        raise InvalidSpecError(f"log_retention_days must be a whole number >= 1, got {days!r}.")
    redact = spec.log_redact
    if isinstance(redact, str):  # one name, not its letters
        redact = (redact,)
    if not all(isinstance(f, str) and f for f in redact):
        raise InvalidSpecError(f"log_redact must be column names, got {redact!r}.")
    object.__setattr__(spec, "log_redact", tuple(redact))  # a list is fine from callers


def _check_explain_and_segments(spec: DeploymentSpec) -> None:
    if not (_finite(spec.explain_timeout_s) and spec.explain_timeout_s > 0):
        raise InvalidSpecError(
            f"explain_timeout_s must be a number of seconds > 0, got {spec.explain_timeout_s!r}."
        )
    rate = spec.importance_rows_per_s
    if not (_finite(rate) and 0 <= rate <= 1000):
        raise InvalidSpecError(f"importance_rows_per_s must be in [0, 1000] (0: off), got {rate!r}")
    segments = (spec.segments,) if isinstance(spec.segments, str) else spec.segments
    if not all(isinstance(c, str) and c for c in segments):
        raise InvalidSpecError(f"segments must be column names, got {segments!r}.")
    object.__setattr__(spec, "segments", tuple(segments))
    try:
        FairnessThresholds(**spec.fairness).validate()
    except TypeError:
        raise InvalidSpecError(
            f"Unknown fairness threshold in {sorted(spec.fairness)}; use parity_gap, "
            "accuracy_gap, min_count."
        ) from None


def validate_name(name: str) -> None:
    """Raise :class:`InvalidSpecError` unless ``name`` can be a route and a Bento name."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidSpecError(
            f"Invalid deployment name {name!r}: use 1-63 lowercase letters, digits, '-' or "
            "'_', starting with a letter (it becomes the route /<name>)."
        )


def name_from_variable(variable: str) -> str:
    """A deployment name derived from a Python variable name (``myModel`` -> ``mymodel``)."""
    candidate = re.sub(r"[^a-z0-9_-]", "-", variable.lower()).strip("-_")
    if not candidate or not candidate[0].isalpha():
        candidate = "model-" + candidate
    return candidate[:63]
