"""The retraining loop: labelled traffic -> trained candidate -> gate -> canary.

``notebooks/retrain.ipynb`` runs these steps cell by cell and ``jupyter-deploy retrain``
runs that notebook, after checking the trigger itself so that a cron job that finds
nothing to do exits 0 at once. The training set is the deployment's own payload log
joined with its feedback labels (:meth:`Deployment.training_data`), optionally plus a
base CSV; the most recent ``holdout_share`` of the logged rows are held out, and the
candidate is gated against the live version on them with the deployment gate's metrics
and rules (:mod:`.gate`). A candidate that passes is rolled out as a canary.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from ..monitoring.training import LABEL, META
from ..spec import validate_name
from .candidate import Candidate, Holdout, _run_notebook, _run_script
from .gate import METRICS, GateResult, _number, champion_predictions, decide

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_TRIGGER = re.compile(r"^(accuracy|mae|rmse)\s*([<>])\s*([0-9.eE+-]+)$")


def parse_window(text: Any) -> int:
    """Seconds from ``3600``, ``"90m"``, ``"24h"`` or ``"7d"``."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([smhd]?)\s*", str(text))
    if not match or float(match.group(1)) <= 0:
        raise ParameterError(f"window must be a duration like 3600, 90m, 24h or 7d; got {text!r}.")
    return int(float(match.group(1)) * _UNITS[match.group(2) or "s"])


def parse_trigger(text: str) -> tuple[str, str | None, float | None]:
    """``always``, ``drift`` or a feedback metric bound such as ``accuracy<0.9``."""
    text = str(text).strip().lower()
    if text in ("always", "drift"):
        return text, None, None
    match = _TRIGGER.match(text)
    if not match:
        raise ParameterError(f"trigger must be always, drift, or like accuracy<0.9 or mae>3; "
                             f"got {text!r}.")  # fmt: skip
    return match.group(1), match.group(2), _number(match.group(3), "trigger bound")


@dataclass(frozen=True)
class RetrainParams:
    """The retrain notebook's parameters, checked before anything runs."""

    name: str
    train: str  # a .py or .ipynb defining train(data: DataFrame) -> fitted model
    window: Any = "24h"
    trigger: str = "always"
    holdout_share: float = 0.2
    metric: str = "accuracy"
    threshold: float | None = None
    max_regression: float = 0.0
    canary: float = 0.1  # first share of the canary (deploy(canary=)); 1: all at once
    base: str | None = None  # a CSV of earlier training rows (schema columns + label)

    def __post_init__(self) -> None:
        validate_name(self.name)
        if Path(self.train).suffix not in (".py", ".ipynb") or not Path(self.train).is_file():
            raise ParameterError(f"train must be an existing .py or .ipynb defining "
                                 f"train(data); got {self.train!r}.")  # fmt: skip
        parse_window(self.window)
        parse_trigger(self.trigger)
        if not 0 < _number(self.holdout_share, "holdout_share") < 1:
            raise ParameterError(
                f"holdout_share must be between 0 and 1, got {self.holdout_share}."
            )
        if self.metric not in METRICS:
            raise ParameterError(
                f"unknown metric {self.metric!r}; use one of {', '.join(METRICS)}."
            )
        if not 0 < _number(self.canary, "canary") <= 1:
            raise ParameterError(f"canary must be a share in (0, 1], got {self.canary}.")
        if self.base and not Path(self.base).is_file():
            raise ParameterError(f"base CSV {self.base} does not exist.")


@dataclass(frozen=True)
class TriggerCheck:
    """Whether to retrain now, and why (shown as ``not needed: <reason>`` otherwise)."""

    needed: bool
    reason: str

    def __repr__(self) -> str:
        return ("needed: " if self.needed else "not needed: ") + self.reason


def check_trigger(dep: Any, params: RetrainParams) -> TriggerCheck:
    """Read the deployment's drift or feedback over the window against the trigger."""
    kind, op, bound = parse_trigger(params.trigger)
    if kind == "always":
        return TriggerCheck(True, "the trigger is 'always'")
    window = parse_window(params.window)
    quality = dep.drift(window_s=window)
    if kind == "drift":
        if not quality.get("available"):
            return TriggerCheck(False, f"no drift measure: {quality.get('reason')}")
        drifted = [f["feature"] for f in quality["features"] + quality["predictions"]
                   if f["drifted"]]  # fmt: skip
        if drifted:
            return TriggerCheck(True, f"drift in {', '.join(drifted)} over {window} s")
        return TriggerCheck(False, f"no feature drifted over the last {window} s")
    value = quality.get("accuracy", {}).get(kind)
    if value is None:
        return TriggerCheck(False, f"no feedback labels over the last {window} s to measure {kind}")
    assert bound is not None
    met = value < bound if op == "<" else value > bound
    text = f"{kind} {value:.4g} over the last {window} s"
    return TriggerCheck(met, f"{text} {'is' if met else 'is not'} {op} {bound:g}")


def training_set(dep: Any, params: RetrainParams) -> tuple[Any, Any]:
    """``(train, holdout)`` frames: logged labelled rows (+ base CSV), newest held out."""
    import pandas as pd

    logged = dep.training_data(since=time.time() - parse_window(params.window))
    n_hold = round(len(logged) * params.holdout_share)
    if n_hold < 1 or len(logged) - n_hold < 1:
        raise ParameterError(f"{len(logged)} labelled rows in the window: too few to train "
                             "and hold out; widen the window or send more feedback.")  # fmt: skip
    holdout, train = logged.iloc[-n_hold:], logged.iloc[:-n_hold]
    if params.base:
        train = pd.concat([pd.read_csv(params.base), train], ignore_index=True)
    return train.drop(columns=META, errors="ignore"), holdout


def train_candidate(params: RetrainParams, train: Any) -> Candidate:
    """Run the training script or notebook and call its ``train(data)``."""
    run = _run_notebook if params.train.endswith(".ipynb") else _run_script
    fit = run(params.train).get("train")
    if not callable(fit):
        raise ParameterError(f"{params.train} defines no function train(data) -> model.")
    model = fit(train.copy())
    if not callable(getattr(model, "predict", None)):
        raise ParameterError(f"train() in {params.train} returned {type(model).__name__}, "
                             "not a fitted model with predict.")  # fmt: skip
    return Candidate(model, params.train, "script")


def gate(params: RetrainParams, candidate: Candidate, holdout: Any) -> GateResult:
    """Candidate vs live version on the held-out recent rows, by the gate's rules."""
    features = holdout.drop(columns=[LABEL, *META])
    rows = Holdout(features, holdout[LABEL], "recent labelled rows", LABEL)
    metric = METRICS[params.metric]
    score = metric.compute(rows.y, candidate.model.predict(rows.x))
    champion = champion_predictions(params.name, rows)
    version, champion_score = None, None
    if champion is not None:
        version, champion_score = champion[0], metric.compute(rows.y, champion[1])
    threshold = None if params.threshold in (None, "") else float(params.threshold)
    reasons = decide(params.metric, score, champion_score, threshold, params.max_regression)
    return GateResult(params.name, params.metric, len(rows.x), score, champion_score, version,
                      threshold, params.max_regression, not reasons, reasons)  # fmt: skip


def roll_out(params: RetrainParams, candidate: Candidate, train: Any, result: GateResult) -> Any:
    """Deploy a candidate that passed as a canary starting at ``params.canary`` of requests."""
    from ..client import api

    result.enforce()
    sample = train.drop(columns=[LABEL])
    # The canary controller in the cluster steps it up (or back to 0 %) from here on.
    return api.deploy(candidate.model, params.name, sample=sample, canary=params.canary,
                      progress=False)  # fmt: skip


def summary(
    params: RetrainParams, check: TriggerCheck, result: GateResult | None = None, dep: Any = None
) -> Any:
    """The record cell: what the run decided, and what it deployed if anything."""
    from .record import Summary

    out = Summary(name=params.name, trigger=params.trigger, reason=check.reason,
                  decision="not needed" if not check.needed else "deploy")  # fmt: skip
    if result is not None:
        out.update(metric=result.metric, holdout_rows=result.rows,
                   candidate_score=result.candidate_score, champion_score=result.champion_score,
                   champion_version=result.champion_version)  # fmt: skip
    if dep is not None:
        traffic = dep.traffic()
        canary = traffic.get("canary") or {}
        out.update(version=max(v["version"] for v in dep.versions()), weights=traffic["weights"],
                   canary=canary.get("state"), canary_share=canary.get("share"))  # fmt: skip
    return out


def retrain_command(args: Any) -> Any:
    """The CLI's ``retrain``: check the trigger here, run the notebook only when it is met."""
    from ..client import api
    from .runner import parse_value, run

    params = {key: parse_value(value) for key, value in args.parameter or []}
    params.update(name=args.name, trigger=args.trigger, window=args.window)
    check = check_trigger(api.get(args.name), RetrainParams(**params))
    if not check.needed:
        return f"not needed: {check.reason}"
    result = run(args.notebook, args.output, params, cwd=args.cwd)
    return {**result.summary, "record": result.output}
