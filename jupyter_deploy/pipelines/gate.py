"""Quality gate: validate a candidate on holdout data against the live version, then decide.

The candidate (challenger) is scored in the kernel; the live version (champion) is scored
by querying its endpoint with the same holdout rows, so the comparison is with what
clients actually get. The gate passes when the candidate reaches ``threshold`` and is not
worse than the champion by more than ``max_regression`` (both in the metric's units).
``notebooks/deploy.ipynb`` runs these steps cell by cell; the CLI runs that notebook.
"""

from __future__ import annotations

import datetime
import html
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..control.records import CanaryPolicy
from ..errors import (
    DeploymentNotFoundError,
    GateFailedError,
    InvalidSpecError,
    ParameterError,
    PredictionError,
)
from ..spec import Autoscaling, DeploymentSpec, validate_name
from .candidate import Candidate, Holdout, check_data, check_source

# Rows per request when the champion scores the holdout (well under max_batch_rows).
CHUNK_ROWS = 1000


@dataclass(frozen=True)
class Metric:
    """A holdout metric: its name, direction, and whether it lies in [0, 1]."""

    name: str
    higher_is_better: bool
    unit_interval: bool
    compute: Callable[[Any, Any], float]


def _sk(name: str, **kwargs: Any) -> Callable[[Any, Any], float]:
    def compute(y_true: Any, y_pred: Any) -> float:
        from sklearn import metrics

        return float(getattr(metrics, name)(y_true, y_pred, **kwargs))

    return compute


def _rmse(y_true: Any, y_pred: Any) -> float:
    from sklearn.metrics import mean_squared_error

    return math.sqrt(float(mean_squared_error(y_true, y_pred)))


METRICS = {
    m.name: m
    for m in (
        Metric("accuracy", True, True, _sk("accuracy_score")),
        Metric("balanced_accuracy", True, True, _sk("balanced_accuracy_score")),
        Metric("f1_macro", True, True, _sk("f1_score", average="macro")),
        Metric("r2", True, False, _sk("r2_score")),
        Metric("mae", False, False, _sk("mean_absolute_error")),
        Metric("rmse", False, False, _rmse),
    )
}


def _number(value: Any, what: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{what} must be a number, got {value!r}.") from None
    if math.isnan(number) or math.isinf(number):
        raise ParameterError(f"{what} must be finite, got {value!r}.")
    return number


def _integer(value: Any, what: str) -> int:
    number = _number(value, what)
    if not number.is_integer():
        raise ParameterError(f"{what} must be a whole number, got {value!r}.")
    return int(number)


@dataclass(frozen=True)
class GateParams:
    """A deployment notebook's parameters, checked when built (one clear line if wrong).

    ``model`` is a training script or notebook, a pickle/joblib file, or a Bento or
    model tag; ``data`` a holdout CSV with a ``target`` column; ``threshold`` the least
    acceptable score (the most, for error metrics such as ``rmse``); ``max_regression``
    how much worse than the live version the candidate may be. Nothing heavy happens
    here: files are looked at, not loaded, so bad parameters fail before any work.
    """

    name: str
    model: str
    data: str
    target: str = "target"
    metric: str = "accuracy"
    threshold: float | None = None
    max_regression: float = 0.0
    min_replicas: int = Autoscaling.min_replicas
    max_replicas: int = Autoscaling.max_replicas
    variable: str = "model"
    runtime: str = DeploymentSpec.runtime
    rollout: str = "all"
    canary: Any = 0.1
    canary_timeout_s: float = 900.0

    def __post_init__(self) -> None:
        def put(key: str, value: Any) -> None:
            object.__setattr__(self, key, value)  # frozen: normalise once, here

        try:
            validate_name(self.name)
            put("min_replicas", _integer(self.min_replicas, "min_replicas"))
            put("max_replicas", _integer(self.max_replicas, "max_replicas"))
            Autoscaling(self.min_replicas, self.max_replicas).validate()
            DeploymentSpec(name=self.name, runtime=self.runtime)  # a known runtime
        except InvalidSpecError as exc:
            raise ParameterError(str(exc)) from None
        if self.metric not in METRICS:
            raise ParameterError(f"unknown metric {self.metric!r}; use one of "
                                 f"{', '.join(METRICS)}.")  # fmt: skip
        metric = METRICS[self.metric]
        if self.threshold not in (None, ""):
            put("threshold", _number(self.threshold, "threshold"))
            if metric.unit_interval and not 0 <= self.threshold <= 1:
                raise ParameterError(f"threshold for {self.metric} must be between 0 and 1, "
                                     f"got {self.threshold}.")  # fmt: skip
            if not metric.higher_is_better and self.threshold < 0:
                raise ParameterError(f"threshold for {self.metric} must be >= 0.")
        else:
            put("threshold", None)
        put("max_regression", _number(self.max_regression, "max_regression"))
        if self.max_regression < 0:
            raise ParameterError(f"max_regression must be >= 0, got {self.max_regression}.")
        if self.rollout not in ("all", "canary"):
            raise ParameterError(f"rollout must be 'all' or 'canary', got {self.rollout!r}.")
        if self.rollout == "canary":
            try:  # from a shell, settings come as JSON text: -p canary '{"interval_s": 30}'
                canary = json.loads(self.canary) if isinstance(self.canary, str) else self.canary
                CanaryPolicy.parse(canary)
            except (ValueError, InvalidSpecError) as exc:
                raise ParameterError(f"canary: {exc}") from None
            put("canary", canary)
        put("canary_timeout_s", _number(self.canary_timeout_s, "canary_timeout_s"))
        check_source(self.model)
        check_data(self.data, self.target)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _repr_html_(self) -> str:
        return _table("Parameters", self.to_dict())


@dataclass
class GateResult:
    """The scores and the decision; ``passed`` False names every reason in ``reasons``."""

    name: str
    metric: str
    rows: int
    candidate_score: float
    champion_score: float | None
    champion_version: int | None
    threshold: float | None
    max_regression: float
    passed: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def decision(self) -> str:
        return "deploy" if self.passed else "reject"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "decision": self.decision}

    def enforce(self) -> GateResult:
        """Raise :class:`GateFailedError` with every reason if the gate did not pass."""
        if not self.passed:
            after = (f"live v{self.champion_version} keeps serving"
                     if self.champion_version else "nothing was deployed")  # fmt: skip
            raise GateFailedError(f"'{self.name}' rejected: {'; '.join(self.reasons)}; {after}.")
        return self

    def __repr__(self) -> str:
        champion = ("no live version" if self.champion_version is None
                    else f"live v{self.champion_version} {self.champion_score:.4f}")  # fmt: skip
        verdict = "PASS" if self.passed else "FAIL: " + "; ".join(self.reasons)
        return (f"{self.metric} on {self.rows} holdout rows: candidate "
                f"{self.candidate_score:.4f}, {champion} -> {verdict}")  # fmt: skip

    def _repr_html_(self) -> str:
        return _table(f"Gate: {self.decision}", self.to_dict())


def decide(
    metric: str,
    candidate: float,
    champion: float | None,
    threshold: float | None,
    max_regression: float,
) -> list[str]:
    """Why the candidate fails the gate; an empty list means it passes."""
    m = METRICS[metric]
    sign = 1.0 if m.higher_is_better else -1.0  # compare as "higher is better"
    reasons = []
    if threshold is not None and sign * (candidate - threshold) < 0:
        word = "below" if m.higher_is_better else "above"
        reasons.append(f"{metric} {candidate:.4f} is {word} the threshold {threshold:g}")
    if champion is not None and sign * (candidate - champion) < -max_regression - 1e-12:
        reasons.append(f"{metric} {candidate:.4f} is worse than the live version's "
                       f"{champion:.4f} by more than {max_regression:g}")  # fmt: skip
    return reasons


def champion_predictions(name: str, holdout: Holdout) -> tuple[int, Any] | None:
    """(live version, its predictions on the holdout through its endpoint), or None."""
    import numpy as np

    from ..client import api

    try:
        dep = api.get(name)
    except DeploymentNotFoundError:
        return None
    # Only hashes are stored: a run in a new process scores with a key of its own, made
    # for the predict scope, for an hour at most, and revoked once the scores are in.
    key = None
    if dep.spec.get("auth", True) and dep.token is None:
        key = f"gate-{uuid.uuid4().hex[:8]}"
        dep.create_key(key, scopes=["predict"], expires_in=datetime.timedelta(hours=1))
    try:
        parts = [dep.predict(holdout.x.iloc[i : i + CHUNK_ROWS])
                 for i in range(0, len(holdout.x), CHUNK_ROWS)]  # fmt: skip
    except PredictionError as exc:  # unscorable champion: do not replace it blindly
        raise GateFailedError(f"the live v{dep.version} of '{name}' cannot score the holdout "
                              f"({exc}); it keeps serving.") from None  # fmt: skip
    finally:
        if key is not None:
            dep.revoke_key(key)
    return int(dep.version or 0), np.concatenate(parts)


def evaluate(params: GateParams, candidate: Candidate, holdout: Holdout) -> GateResult:
    """Score the candidate and the live version on ``holdout`` and decide.

    Parameters
    ----------
    params
        The gate (metric, threshold, max_regression) and the deployment name.
    candidate
        The challenger, scored in this process.
    holdout
        Rows never used in training; the live version is scored on the same rows through
        its HTTP endpoint.

    Returns
    -------
    GateResult
        Both scores and the decision; call :meth:`GateResult.enforce` to stop on failure.
    """
    metric = METRICS[params.metric]
    try:
        predicted = candidate.model.predict(holdout.x)
    except Exception as exc:  # any estimator error: the model does not fit this data
        raise ParameterError(f"the candidate cannot predict the rows of {holdout.path}: "
                             f"{type(exc).__name__}: {exc}") from None  # fmt: skip
    score = metric.compute(holdout.y, predicted)
    champion = champion_predictions(params.name, holdout)
    version, champion_score = None, None
    if champion is not None:
        version, champion_score = champion[0], metric.compute(holdout.y, champion[1])
    reasons = decide(params.metric, score, champion_score, params.threshold,
                     params.max_regression)  # fmt: skip
    return GateResult(params.name, params.metric, len(holdout.x), score, champion_score,
                      version, params.threshold, params.max_regression, not reasons,
                      reasons)  # fmt: skip


def _table(caption: str, data: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
        for k, v in data.items()
    )
    head = f"<caption style='text-align:left'><b>{html.escape(caption)}</b></caption>"
    return f"<table>{head}{rows}</table>"
