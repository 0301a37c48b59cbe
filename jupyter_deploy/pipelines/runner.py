"""``jupyter-deploy run``: execute a deployment notebook with papermill, for shells and CI.

The executed notebook is the deployment record. A cell that fails with one of our errors
(a bad parameter, a rejected candidate) comes back from papermill as the error's class
name and message; it is raised here again as that class, so the CLI maps it to its
documented exit code (2 bad parameters, 4 gate failed) and prints its one line.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import errors
from ..errors import ParameterError
from .record import RECORD_TAG

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def parse_value(text: str) -> Any:
    """A ``-p key value`` value as papermill's CLI reads it: bool, None, int, float or str."""
    words = {"true": True, "false": False, "none": None, "null": None}
    if text.lower() in words:
        return words[text.lower()]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


@dataclass
class RunResult:
    """An executed deployment notebook: where its record is, and its summary cell's data."""

    output: str
    summary: dict[str, Any]


def _summary(nb: Any) -> dict[str, Any]:
    for cell in nb.cells:
        if RECORD_TAG in cell.get("metadata", {}).get("tags", []):
            for out in cell.get("outputs", []):
                if "application/json" in out.get("data", {}):
                    return dict(out["data"]["application/json"])
    return {}


def _reraise(exc: Any, output: str) -> None:
    """Raise papermill's cell error as our own error class when it is one of ours."""
    message = _ANSI.sub("", str(exc.evalue)).strip()
    raise errors.from_wire((exc.ename, f"{message} (record: {output})", None)) from None


def run(
    notebook: str,
    output: str | None = None,
    parameters: dict[str, Any] | None = None,
    *,
    cwd: str | None = None,
    kernel: str | None = None,
) -> RunResult:
    """Execute ``notebook`` with ``parameters`` injected; the executed copy is the record.

    Parameters
    ----------
    notebook
        A notebook with a cell tagged ``parameters`` (e.g. ``notebooks/deploy.ipynb``).
    output
        Where to write the executed notebook; default ``<stem>-<UTC time>.ipynb``.
    parameters
        Values for the parameters cell; a name it does not define is refused up front.
    cwd, kernel
        Working directory of the kernel (default: this one) and kernel name.

    Returns
    -------
    RunResult
        The record's path and the JSON summary of its ``record`` cell.

    Raises
    ------
    ParameterError
        The notebook is missing, a parameter is unknown, or a cell refused a parameter.
    GateFailedError
        The quality gate rejected the candidate; nothing was deployed.
    JupyterDeployError
        Any other failure of a cell (message names the error).
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    parameters = dict(parameters or {})
    if not Path(notebook).is_file():
        raise ParameterError(f"notebook {notebook} does not exist.")
    known = pm.inspect_notebook(notebook)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ParameterError(f"{notebook} has no parameter {', '.join(map(repr, unknown))}; "
                             f"its parameters: {', '.join(known) or 'none'}.")  # fmt: skip
    if output is None:
        output = f"{Path(notebook).stem}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.ipynb"
    try:
        nb = pm.execute_notebook(notebook, output, parameters=parameters, cwd=cwd,
                                 kernel_name=kernel, progress_bar=False)  # fmt: skip
    except PapermillExecutionError as exc:
        _reraise(exc, output)
        raise  # unreachable: _reraise always raises
    return RunResult(output, _summary(nb))


def run_command(args: Any) -> dict[str, Any]:
    """The CLI's ``run``: ``-p key value`` pairs parsed like papermill's."""
    params = {key: parse_value(value) for key, value in args.parameter or []}
    result = run(args.notebook, args.output, params, cwd=args.cwd, kernel=args.kernel)
    return {**result.summary, "record": result.output}
