"""The scoring actor: one loaded Bento version, scoring batches of rows.

Each actor of the job's pool loads the deployment's Bento exactly as a replica does
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


class Scorer:
    """Ray Data callable class: a pandas batch in, an Arrow table of the same rows out.

    The output has the kept columns, the prediction column(s), ``version`` and ``error``
    (null for a scored row). A batch whose rows all failed has no prediction columns.
    """

    def __init__(self, target: BatchTarget, method: str, keep: list[str], max_rows: int) -> None:
        from ..replica.loaded import LoadedVersion

        self.loaded = LoadedVersion.load(
            target.name, target.version, target.bento_tag, max_rows, _fetch
        )
        self.runtime = self.loaded.runtime
        self.target, self.method, self.keep = target, method, keep
        self._kinds = dict(target.columns)

    def _rows(self, batch: Any) -> list[Any]:
        """The batch's feature values as the runtime's rows (native Python values)."""
        import numpy as np

        frame = batch[self.target.features]
        if all(frame[c].dtype.kind == "f" for c in frame.columns):  # the common case, fast
            return frame.to_numpy(dtype=np.float64).tolist()
        cols = {}
        for name, kind in self.target.columns:
            values = frame[name]
            if values.dtype.kind in "OSU" and kind in ("float", "integer", "bool"):
                values = _numbers(values, kind)
            elif values.dtype.kind == "M":
                values = values.map(lambda t: None if t is None or t != t else t.isoformat())
            cols[name] = values.astype(object).where(values.notna(), None)
        import pandas as pd

        return pd.DataFrame(cols).to_numpy(dtype=object).tolist()

    def _fast(self, batch: Any, out: list[Any]) -> bool:
        """Score an all-finite float batch at once (runtimes with ``matrix_input`` only)."""
        import numpy as np

        frame = batch[self.target.features]
        floats = all(frame[c].dtype.kind == "f" for c in frame.columns)
        if not floats or not hasattr(self.runtime, "matrix_input"):
            return False
        x = self.runtime.matrix_input(frame.to_numpy(dtype=np.float64))
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

    def __call__(self, batch: Any) -> Any:
        import numpy as np
        import pyarrow as pa

        n = len(batch)
        kept = pa.Table.from_pandas(batch[self.keep], preserve_index=False)
        columns: dict[str, Any] = {c: kept.column(c) for c in self.keep}
        errors: dict[int, str] = {}
        outs: list[Any] = []
        missing = [f for f in self.target.features if f not in batch.columns]
        if missing:
            errors = dict.fromkeys(range(n), "missing column(s) " + ", ".join(map(repr, missing)))
        elif n and not self._fast(batch, outs):
            self._score(self._rows(batch), 0, n, errors, outs)
        bad = np.zeros(n, dtype=bool)
        bad[list(errors)] = True
        if outs:
            columns.update(self._predictions(np.concatenate(outs), bad))
        columns[VERSION] = pa.array(np.full(n, self.target.version, dtype=np.int64))
        columns[ERROR] = pa.array([errors.get(i) for i in range(n)], type=pa.string())
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
