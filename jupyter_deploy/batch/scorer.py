"""The scoring task: one loaded Bento version, scoring batches of rows.

Each worker process of the job loads the deployment's Bento exactly as a replica does
(:meth:`LoadedVersion.load`: the archive from the cluster registry, the Bento's own
``jd_runtime.py``), so a row is valid in a batch job if and only if the endpoint would
accept it. A batch is validated and predicted whole (all-float batches through the runtime's
``matrix_input``, one numpy check instead of a loop per value); when it is refused, the
batch is split in halves until each bad row stands alone, so a few bad rows cost a few
extra calls (log2 of the batch size each) and never stop the job.
"""

from __future__ import annotations

import re
from typing import Any

from .records import ERROR, PREDICTION, VERSION, BatchTarget

_INSTANCE = re.compile(r"^instance \d+: ")
#: Rows per call of the row-by-row checks, when a batch is refused whole.
SLOW_ROWS = 8192


def _fetch(tag: str) -> bytes | None:
    import ray

    from ..control.registry import handle

    return ray.get(handle(create=False).get_archive.remote(tag))


def _numbers(values: Any, kind: str) -> Any:
    """Text cells of a numeric column as numbers; unparsable cells stay text (so they fail)."""
    import pandas as pd

    if kind == "bool":
        words = {"true": True, "false": False, "1": True, "0": False}
        parsed = values.map(lambda v: words.get(v.lower(), v) if isinstance(v, str) else v)
        return parsed.astype(object)
    parsed = pd.to_numeric(values, errors="coerce").astype(object)
    unparsed = parsed.isna() & values.notna()
    parsed[unparsed] = values[unparsed]
    return parsed


#: The Bento this worker process loaded last, by (name, version, tag, row limit).
_LOADED: dict[tuple[str, int, str, int], Any] = {}


def _load(target: BatchTarget, max_rows: int) -> Any:
    """This process's ``LoadedVersion`` of ``target``, loaded on first use.

    Batch jobs run as Ray Data tasks in the cluster's pooled worker processes, which
    outlive a job: the imports and the Bento load (seconds on a busy machine) are paid once
    per process, not once per job. One version per process, so memory stays one model.
    """
    from ..replica.loaded import LoadedVersion

    key = (target.name, target.version, target.bento_tag, max_rows)
    if key not in _LOADED:
        loaded = LoadedVersion.load(*key, _fetch)
        _LOADED.clear()
        _LOADED[key] = loaded
    return _LOADED[key]


class Scorer:
    """Ray Data callable class: an Arrow batch in, an Arrow table of the same rows out.

    The output has the kept columns, the prediction column(s), ``version`` and ``error``
    (null for a scored row). A batch whose rows all failed has no prediction columns.
    """

    def __init__(self, target: BatchTarget, method: str, keep: list[str], max_rows: int) -> None:
        self.loaded = _load(target, max_rows)
        self.runtime = self.loaded.runtime
        self.target, self.method, self.keep = target, method, keep
        self.max_rows = max_rows
        self._kinds = dict(target.columns)

    def _rows(self, batch: Any) -> list[Any]:
        """The batch's feature values (a DataFrame) as the runtime's rows (native values)."""
        import pandas as pd

        cols = {}
        for name, kind in self.target.columns:
            values = batch[name]
            if values.dtype.kind in "OSU" and kind in ("float", "integer", "bool"):
                values = _numbers(values, kind)
            elif values.dtype.kind == "M":
                values = values.map(lambda t: None if t is None or t != t else t.isoformat())
            cols[name] = values.astype(object).where(values.notna(), None)
        return pd.DataFrame(cols).to_numpy(dtype=object).tolist()

    def _fast(self, table: Any, out: list[Any]) -> bool:
        """Score an all-finite float batch at once (runtimes with ``matrix_input`` only):
        the Arrow columns go into one float64 matrix, no DataFrame, no Python per row."""
        import numpy as np
        import pyarrow as pa

        columns = [table.column(f) for f in self.target.features]
        if not hasattr(self.runtime, "matrix_input") or not all(
            pa.types.is_floating(c.type) for c in columns
        ):
            return False
        x = np.column_stack([c.to_numpy() for c in columns]).astype(np.float64, copy=False)
        x = self.runtime.matrix_input(x)
        if x is None:
            return False
        try:
            out.append(self.runtime.run(self.method, x))
        except self.loaded.input_error:
            return False  # the model refused a row: find it row by row
        return True

    def score_rows(self, rows: list[Any]) -> tuple[Any, dict[int, str]]:
        """Predictions of the good rows (in order; None if none) and each bad row's reason."""
        import numpy as np

        errors: dict[int, str] = {}
        outs: list[Any] = []
        if rows:
            self._score(rows, 0, len(rows), errors, outs)
        return (np.concatenate(outs) if outs else None), errors

    def _score(self, rows: list[Any], lo: int, hi: int, errors: dict[int, str], out: list[Any]):
        """Predict rows[lo:hi]; on refusal split until each bad row is alone and named."""
        try:
            x = self.runtime.to_model_input(rows[lo:hi])
            out.append(self.runtime.run(self.method, x))
        except self.loaded.input_error as exc:
            if hi - lo == 1:
                errors[lo] = _INSTANCE.sub("", str(exc))
                return
            mid = (lo + hi) // 2
            self._score(rows, lo, mid, errors, out)
            self._score(rows, mid, hi, errors, out)

    def _slow(self, table: Any, start: int, errors: dict[int, str], out: list[Any]) -> None:
        """Row by row checks of a refused slice, in pieces of ``SLOW_ROWS`` so the halving
        of a large batch with many bad rows costs what it costs on small ones."""
        frame = table.select(self.target.features).to_pandas()
        for lo in range(0, len(frame), SLOW_ROWS):
            part: dict[int, str] = {}
            self._score(self._rows(frame.iloc[lo : lo + SLOW_ROWS]), 0,
                        min(SLOW_ROWS, len(frame) - lo), part, out)  # fmt: skip
            errors.update({start + lo + i: why for i, why in part.items()})

    def __call__(self, batch: Any) -> Any:
        """Score an Arrow batch (or a pandas one) in slices of the runtime's row limit."""
        import numpy as np
        import pyarrow as pa

        table = (
            batch
            if isinstance(batch, pa.Table)
            else pa.Table.from_pandas(batch, preserve_index=False)
        )
        n = table.num_rows
        columns: dict[str, Any] = {c: table.column(c) for c in self.keep}
        errors: dict[int, str] = {}
        outs: list[Any] = []
        missing = [f for f in self.target.features if f not in table.column_names]
        if missing:
            errors = dict.fromkeys(range(n), "missing column(s) " + ", ".join(map(repr, missing)))
        for start in range(0, n if not missing else 0, self.max_rows):
            part = table.slice(start, self.max_rows)
            if not self._fast(part, outs):
                self._slow(part, start, errors, outs)
        bad = np.zeros(n, dtype=bool)
        bad[list(errors)] = True
        if outs:
            columns.update(self._predictions(np.concatenate(outs), bad))
        columns[VERSION] = pa.array(np.full(n, self.target.version, dtype=np.int64))
        columns[ERROR] = (
            pa.array([errors.get(i) for i in range(n)], type=pa.string())
            if errors else pa.nulls(n, pa.string())
        )  # fmt: skip
        return pa.table(columns)

    def _predictions(self, good: Any, bad: Any) -> dict[str, Any]:
        """Prediction column(s) over every row, null where the row failed."""
        import numpy as np
        import pyarrow as pa

        if good.ndim == 1:
            good = good[:, None]
        full = np.empty((len(bad), good.shape[1]), dtype=good.dtype)
        full[~bad] = good
        if good.shape[1] == 1 and self.method == "predict":
            names = [PREDICTION]
        elif self.method == "predict_proba" and hasattr(self.runtime.model, "classes_"):
            names = [f"proba_{c}" for c in np.asarray(self.runtime.model.classes_).tolist()]
        else:
            names = [f"{PREDICTION}_{i}" for i in range(good.shape[1])]
        mask = bad if bad.any() else None
        return {name: pa.array(full[:, i], mask=mask) for i, name in enumerate(names)}


def score_block(batch: Any, target: BatchTarget, method: str, keep: list[str], max_rows: int,
                parts: tuple[str, str] | None) -> Any:  # fmt: skip
    """Ray Data task: score a block of rows (CSV or DataFrame input); with ``parts`` (a
    folder and a format), write it as a part file and return its manifest row."""
    import pyarrow as pa

    table = Scorer(target, method, keep, max_rows)(batch)
    if parts is None:
        return table
    from .sinks import write_part

    return pa.Table.from_pylist([write_part(table, *parts, keep)])


def score_units(units: list[dict[str, Any]], target: BatchTarget, method: str, keep: list[str],
                max_rows: int, parts: tuple[str, str], wanted: list[str]) -> list[Any]:  # fmt: skip
    """Ray task: read Parquet units (:func:`..sources.parts`), score them and write each
    as a part file; the manifest rows (:func:`..sinks.write_part`)."""
    from .sinks import write_part
    from .sources import read_part

    scorer = Scorer(target, method, keep, max_rows)
    return [write_part(scorer(read_part(u["path"], u["groups"], wanted)), *parts, keep)
            for u in units]  # fmt: skip
