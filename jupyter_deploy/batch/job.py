"""A batch job: check everything up front, then stream the input through scoring actors.

The driver (the kernel, or the CLI) resolves the input and the output and fails with one
line before any work; then Ray Data reads the input in blocks on the cluster, an actor
pool scores them (:class:`~jupyter_deploy.batch.scorer.Scorer`), and the driver streams
the scored blocks, in input order, into the output file. Memory stays bounded by the
blocks in flight, not by the input's size.
"""

from __future__ import annotations

import time
from typing import Any

from ..errors import BatchFailedError, BatchSpecError, JupyterDeployError
from ..progress import RowProgress
from . import sources
from .records import ERROR, PREDICTION, ROW, VERSION, BatchResult, BatchTarget
from .scorer import Scorer
from .sinks import FileSink, FrameSink

#: Rows per scoring call; also the runtime's per-call row limit inside the actors.
BATCH_ROWS = 8192
MAX_WORKERS = 4


def default_workers() -> int:
    """Scoring actors: the cluster's free CPUs less one for the read tasks, 1 to 4."""
    import ray

    free = int(ray.available_resources().get("CPU", 1))
    return max(1, min(MAX_WORKERS, free - 1))


def _scored(source: sources.Source, target: BatchTarget, method: str, keep: list[str],
            workers: int, batch_rows: int) -> Any:  # fmt: skip
    """The dataset of scored blocks, in input order."""
    from ray.data import ActorPoolStrategy

    ds = sources.dataset(source, list(target.columns), keep)
    ds.context.execution_options.preserve_order = True  # row numbers come from the order
    ds.context.enable_progress_bars = False  # ours shows rows of the whole job instead
    # Ray 2.60: `concurrency=` is deprecated for callable classes; the pool is `compute=`.
    return ds.map_batches(
        Scorer,
        fn_constructor_args=(target, method, keep, batch_rows),
        batch_size=batch_rows,
        batch_format="pandas",
        compute=ActorPoolStrategy(min_size=1, max_size=workers),
        num_cpus=1,
        udf_modifying_row_count=False,
    )


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
        Scoring actors (default: free CPUs less one, 1 to 4).

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
    scored = _scored(source, target, method, keep, workers or default_workers(), batch_rows)
    offset = 0
    try:
        for block in scored.iter_batches(batch_size=None, batch_format="pyarrow"):
            sink.write(block, offset)
            offset += block.num_rows
            bar.advance(block.num_rows)
    except JupyterDeployError:
        sink.abort()
        raise
    except Exception as exc:
        sink.abort()
        first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise BatchFailedError(
            f"batch job of {target.name} failed, nothing written: {first}"
        ) from exc
    bar.close()
    if isinstance(sink, FrameSink):
        return sink.result()
    out, errors = sink.finish()
    return BatchResult(target.name, target.version, method, offset, sink.failed,
                       time.perf_counter() - started, out, errors)  # fmt: skip
