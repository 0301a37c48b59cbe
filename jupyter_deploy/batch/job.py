"""A batch job: check everything up front, then stream the input through scoring tasks.

The driver (the kernel, or the CLI) resolves the input and the output and fails with one
line before any work; then tasks on the cluster score the input in blocks
(:class:`~jupyter_deploy.batch.scorer.Scorer`: Parquet read units as plain tasks, CSV and
DataFrames through Ray Data) and, for a file output, each writes its block as a part
file; the driver stitches the parts, in input order, into the output file. Memory stays
bounded by the blocks in flight, not by the input's size.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from ..errors import BatchFailedError, BatchSpecError, JupyterDeployError
from ..progress import RowProgress
from . import sources, units
from .records import ERROR, PREDICTION, ROW, VERSION, BatchResult, BatchTarget
from .scorer import score_block
from .sinks import FileSink, FrameSink

#: Rows per read unit and per scoring call (the runtime's per-call row limit in the
#: actors): large, so Ray Data's per-block cost and the model's per-call cost are paid
#: rarely; the blocks in flight stay a few MB each.
BATCH_ROWS = 131_072
MAX_WORKERS = 4
_log = logging.getLogger(__name__)


#: Lines Ray Data appends to a task's error (retry settings), not part of the reason.
_RETRY_NOTE = re.compile(r"^(Failed to .* after \d+/\d+ attempts|To change retry|This looks)")


def _reason(exc: BaseException) -> str:
    """The one line that says why a task failed: the last line of the innermost error
    (Ray Data wraps the task's own error in ``UserCodeException``)."""
    seen = {id(exc)}
    while (inner := getattr(exc, "cause", None) or exc.__cause__) is not None:
        if id(inner) in seen or not str(inner).strip():
            break
        seen.add(id(inner))
        exc = inner
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    cut = next((i for i, line in enumerate(lines) if _RETRY_NOTE.match(line)), len(lines))
    lines = lines[:cut] or lines
    return lines[-1].strip() if lines else type(exc).__name__


def default_workers() -> int:
    """Scoring tasks at once: the cluster's free CPUs less one for the driver, 1 to 4."""
    import ray

    free = int(ray.available_resources().get("CPU", 1))
    return max(1, min(MAX_WORKERS, free - 1))


def _scored(source: sources.Source, target: BatchTarget, method: str, keep: list[str],
            workers: int, batch_rows: int, parts: tuple[str, str] | None) -> Any:  # fmt: skip
    """The scored blocks, in input order; with ``parts`` (a folder and a format) the
    manifests of the part files the tasks wrote instead (:func:`..sinks.write_part`).

    Parquet: plain tasks, one per read unit, which the task reads itself
    (:mod:`.units`). CSV and DataFrame input: Ray Data's blocks of rows
    (:func:`score_block`). Tasks, not actors: the pooled worker processes keep the loaded
    Bento for the next job.
    """
    if source.kind == "parquet":
        assert parts is not None  # Parquet input always has a file output
        wanted = sources.wanted_columns(source, list(target.columns), keep)
        plan = sources.parts(source, batch_rows)
        workers = max(1, min(workers, len(plan)))
        return units.manifests(plan, target, method, keep, batch_rows, parts, wanted, workers)
    from ray.data import TaskPoolStrategy

    ds = sources.dataset(source, list(target.columns), keep, batch_rows)
    ds.context.execution_options.preserve_order = True  # row numbers come from the order
    ds.context.enable_progress_bars = False  # ours shows rows of the whole job instead
    ds.context.raise_original_map_exception = True  # the task's own error, not "UDF failed"
    if source.kind != "csv":  # no more tasks than blocks (Ray Data warns otherwise)
        workers = max(1, min(workers, ds.num_blocks()))
    scored = ds.map_batches(
        score_block,
        fn_args=[target, method, keep, batch_rows, parts],
        batch_size=batch_rows,
        batch_format="pyarrow",
        compute=TaskPoolStrategy(size=workers),
        num_cpus=1,
        udf_modifying_row_count=parts is not None,
    )
    return scored.iter_batches(batch_size=None, batch_format="pyarrow")


def _count(name: str, rows: int, failed: int, seconds: float) -> None:
    """Count the job in the deployment's metrics (``batch``, apart from live traffic)."""
    import ray

    from ..monitoring.aggregator import handle

    try:  # awaited (a CLI's driver exits next), but the job's output is what matters
        ray.get(handle().batch.remote(name, rows, failed, seconds), timeout=30)
    except Exception as exc:
        _log.warning("batch job of %s done, but not counted in its metrics: %s", name, exc)


def run(
    target: BatchTarget,
    data: Any,
    output: Any = None,
    *,
    keep: list[str] | tuple[str, ...] = (),
    method: str = "predict",
    overwrite: bool = False,
    workers: int | None = None,
    batch_rows: int = BATCH_ROWS,
    progress: bool = True,
) -> Any:
    """Score ``data`` with ``target`` on the cluster.

    Parameters
    ----------
    target
        The version to score with (``Deployment.batch`` builds it from the registry).
    data
        A ``.parquet``/``.csv`` file, a folder of them, a glob, or a DataFrame.
    output
        ``.parquet`` or ``.csv`` path: the scored rows, in input order. Rows the endpoint
        would refuse go to ``<output>.errors.parquet`` (``row``, ``error``, kept columns).
        None (DataFrame input only): return the scored DataFrame, failed rows in place
        with null predictions and their reason in ``error``.
    keep
        Input columns copied to the output (an id, to join the scores back).
    method
        ``predict`` (column ``prediction``) or ``predict_proba`` (``proba_<class>``).
    overwrite
        Replace an existing output (otherwise :class:`BatchOutputExistsError`).
    workers
        Scoring tasks at once (default: free CPUs less one, 1 to 4).

    Returns
    -------
    BatchResult or DataFrame
    """
    keep = list(keep)
    if method not in target.methods:
        raise BatchSpecError(f"{target.name} v{target.version} has no {method}; "
                             f"use one of {', '.join(target.methods)}")  # fmt: skip
    source = sources.resolve(data)
    sources.check_keep(source, keep, {PREDICTION, VERSION, ERROR, ROW})
    if output is None and source.kind != "frame":
        raise BatchSpecError("give output= (a .parquet or .csv path) for file input")
    sink: FileSink | FrameSink = (
        FileSink(output, keep, overwrite) if output is not None else FrameSink(data.index)
    )
    started = time.perf_counter()
    bar = RowProgress(f"batch {target.name} v{target.version}", source.total_rows, progress)
    blocks: Any = ()  # an input of no rows: nothing to start
    if source.total_rows != 0:
        parts = (str(sink.parts), sink.kind) if isinstance(sink, FileSink) else None
        blocks = _scored(source, target, method, keep, workers or default_workers(), batch_rows,
                         parts)  # fmt: skip
    offset = 0
    try:
        for block in blocks:
            rows = sink.write(block, offset)
            offset += rows
            bar.advance(rows)
    except JupyterDeployError:
        sink.abort()
        raise
    except Exception as exc:
        sink.abort()
        raise BatchFailedError(
            f"batch job of {target.name} failed, nothing written: {_reason(exc)}"
        ) from exc
    bar.close()
    _count(target.name, offset, sink.failed, time.perf_counter() - started)
    if isinstance(sink, FrameSink):
        return sink.result()
    out, errors = sink.finish()
    return BatchResult(target.name, target.version, method, offset, sink.failed,
                       time.perf_counter() - started, out, errors)  # fmt: skip
