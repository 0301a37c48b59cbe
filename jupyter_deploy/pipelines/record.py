"""The deployment notebook's kernel side: one-line errors, the gated deploy, the record.

An executed ``notebooks/deploy.ipynb`` is the deployment record: its cells show the
parameters, the scores, the decision, and (cell tagged ``record``) one JSON summary that
``jupyter-deploy run`` reads back and prints.
"""

from __future__ import annotations

import html
import time
from typing import Any

from ..errors import JupyterDeployError
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

    The rollout is the usual one: the live version serves until the new one is ready, so
    clients see no failed request. The holdout rows give the input schema.
    """
    from ..client import api

    result.enforce()
    low, high = params.min_replicas, params.max_replicas
    return api.deploy(candidate.model, params.name, sample=holdout.x, min_replicas=low,
                      max_replicas=high, runtime=params.runtime)  # fmt: skip


class Summary(dict[str, Any]):
    """The record's summary: shows as a table, and as JSON for ``jupyter-deploy run``."""

    def _repr_json_(self) -> dict[str, Any]:
        return dict(self)

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                       for k, v in self.items())  # fmt: skip
        return f"<table><caption style='text-align:left'><b>Deployed</b></caption>{rows}</table>"


def summary(params: GateParams, result: GateResult, dep: Any) -> Summary:
    """What was deployed, from what, and why: name, version, Bento tag, URL, scores."""
    return Summary(
        name=dep.name,
        version=dep.version,
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
