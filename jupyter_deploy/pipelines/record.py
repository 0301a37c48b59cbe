"""The deployment notebook's kernel side: one-line errors, the gated deploy, the record.

An executed ``notebooks/deploy.ipynb`` is the deployment record: its cells show the
parameters, the scores, the decision, and (cell tagged ``record``) one JSON summary that
``jupyter-deploy run`` reads back and prints.
"""

from __future__ import annotations

import html
import time
from typing import Any

from ..errors import CanaryRolledBackError, JupyterDeployError
from .candidate import Candidate, Holdout
from .gate import GateParams, GateResult

#: Tag of the notebook cell whose ``application/json`` output is the summary.
RECORD_TAG = "record"


def one_line_errors(shell: Any = None) -> None:
    """Show a :class:`JupyterDeployError` raised by any cell as one red line.

    The cell still fails (papermill and ``jupyter-deploy run`` see the error's class and
    message), but the record shows what went wrong instead of a traceback.
    """
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None:  # plain Python: exceptions propagate as usual
        return

    def handler(self: Any, etype: type, value: Any, tb: Any, tb_offset: Any = None) -> list[str]:
        line = f"\x1b[31m{etype.__name__}: {value}\x1b[0m"
        self._showtraceback(etype, value, [line])  # IPython shows nothing we do not send
        return [line]

    shell.set_custom_exc((JupyterDeployError,), handler)


def deploy_candidate(
    params: GateParams, candidate: Candidate, holdout: Holdout, result: GateResult
) -> Any:
    """Deploy the candidate as a new version of ``params.name``, only if ``result`` passed.

    With ``rollout="all"`` the rollout is the usual one: the live version serves until the
    new one is ready, so clients see no failed request. With ``rollout="canary"`` (and a
    live version to compare with) the candidate starts as a canary. The holdout rows give
    the input schema.
    """
    from ..client import api

    result.enforce()
    canary = params.canary if params.rollout == "canary" and result.champion_version else None
    low, high = params.min_replicas, params.max_replicas
    return api.deploy(candidate.model, params.name, sample=holdout.x, min_replicas=low,
                      max_replicas=high, canary=canary)  # fmt: skip


def await_rollout(params: GateParams, dep: Any, poll_s: float = 1.0) -> dict[str, Any]:
    """The rollout's outcome. A canary is waited for (until the controller promotes it or
    rolls it back, at most ``params.canary_timeout_s``), with its steps printed as they
    happen; it carries on in the cluster if the wait ends first."""
    canary = dep.traffic()["canary"]
    if canary is None or canary["version"] != dep.versions()[-1]["version"]:
        first = params.rollout == "canary"
        return {
            "rollout": "all",
            "state": "live",
            "reason": "first version: nothing to compare a canary with" if first else "",
        }
    deadline, last = time.monotonic() + params.canary_timeout_s, None
    while canary["state"] == "running" and time.monotonic() < deadline:
        step = (canary["share"], canary["reason"])
        if step != last:
            print(f"canary v{canary['version']} at {canary['share']:.0%}: {canary['reason']}")
            last = step
        time.sleep(poll_s)
        canary = dep.traffic()["canary"]
    return {"rollout": "canary", "state": canary["state"], "reason": canary["reason"],
            "share": canary["share"], "version": canary["version"]}  # fmt: skip


def check_rollout(outcome: dict[str, Any]) -> None:
    """Fail the run (``jupyter-deploy run`` exits 5) when the canary was rolled back."""
    if outcome["state"] == "rolled_back":
        raise CanaryRolledBackError(f"v{outcome['version']} went back to 0 %: "
                                    f"{outcome['reason']}; the baseline serves.")  # fmt: skip


class Summary(dict[str, Any]):
    """The record's summary: shows as a table, and as JSON for ``jupyter-deploy run``."""

    def _repr_json_(self) -> dict[str, Any]:
        return dict(self)

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                       for k, v in self.items())  # fmt: skip
        return f"<table><caption style='text-align:left'><b>Deployed</b></caption>{rows}</table>"


def summary(
    params: GateParams, result: GateResult, dep: Any, outcome: dict[str, Any] | None = None
) -> Summary:
    """What was deployed, from what, and why: name, version, Bento tag, URL, scores, and
    how it rolled out (a canary's final state and reason)."""
    outcome = outcome or {"rollout": "all", "state": "live", "reason": ""}
    return Summary(
        name=dep.name,
        version=dep.refresh().version,
        candidate_version=dep.versions()[-1]["version"],
        rollout=outcome["rollout"],
        rollout_state=outcome["state"],
        rollout_reason=outcome["reason"],
        bento_tag=dep.bento_tag,
        url=dep.url,
        model=params.model,
        data=params.data,
        metric=result.metric,
        candidate_score=result.candidate_score,
        champion_score=result.champion_score,
        champion_version=result.champion_version,
        decision=result.decision,
        deployed_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
