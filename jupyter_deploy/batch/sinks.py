"""Where scored rows go: a Parquet or CSV file (streamed), or a DataFrame in memory.

The scorer returns every input row with an ``error`` column; a sink splits each block
into scored rows (the output) and failed rows (``<output>.errors.parquet``, with their
row number and reason). Blocks arrive in input order, so a row's number is the count of
rows before its block plus its place in it. Files are written as ``.partial`` and renamed
when the job finishes: a failed job leaves no half-written output behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import BatchOutputExistsError, BatchSpecError
from .records import ERROR, ROW

OUTPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
DICTIONARY_PAGE = 1 << 16


def errors_path(output: Path) -> Path:
    return output.with_name(output.name + ".errors.parquet")


def split(table: Any, offset: int, keep: list[str]) -> tuple[Any, Any]:
    """(scored rows without ``error``, failed rows as ``row, error, *keep``) of a block."""
    import pyarrow as pa
    import pyarrow.compute as pc

    failed = pc.is_valid(table.column(ERROR))
    if not pc.any(failed).as_py():
        return table.drop_columns([ERROR]), None
    rows = pa.array(range(offset, offset + table.num_rows), type=pa.int64())
    bad = table.select([*keep, ERROR]).append_column(ROW, rows).filter(failed)
    good = table.filter(pc.invert(failed)).drop_columns([ERROR])
    return good, bad.select([ROW, ERROR, *keep])


class _Writer:
    """One streamed file; its schema is the first block's, later blocks are cast to it."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        self.partial = path.with_name(path.name + ".partial")
        self._file: Any = None
        self._schema: Any = None

    def write(self, table: Any) -> None:
        if self._file is None:
            self._schema = table.schema
            if self.kind == "csv":
                import pyarrow.csv as pacsv

                self._file = pacsv.CSVWriter(self.partial, table.schema)
            else:
                import pyarrow.parquet as pq

                # A small dictionary page: a column of unique values (an id) stops trying
                # dictionary encoding after 8k values instead of 131k (75 ms -> 12 ms a
                # block); a column of few values (a class, a region) still gets it.
                self._file = pq.ParquetWriter(
                    self.partial, table.schema, dictionary_pagesize_limit=DICTIONARY_PAGE
                )
        self._file.write_table(table.select(self._schema.names).cast(self._schema))

    def finish(self) -> bool:
        if self._file is None:
            return False
        self._file.close()
        os.replace(self.partial, self.path)
        return True

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
        self.partial.unlink(missing_ok=True)


class FileSink:
    """Scored rows to ``output`` (format by extension), failed rows beside it."""

    def __init__(self, output: str | os.PathLike[str], keep: list[str], overwrite: bool) -> None:
        path = Path(output).expanduser().resolve()
        kind = OUTPUT_FORMATS.get(path.suffix.lower())
        if kind is None:
            raise BatchSpecError(f"output {path.name}: name it .parquet or .csv")
        for existing in (path, errors_path(path)):
            if existing.exists() and not overwrite:
                raise BatchOutputExistsError(
                    f"{existing} exists; pass overwrite=True (--overwrite) or another output"
                )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.keep = path, keep
        self._out = _Writer(path, kind)
        self._errors = _Writer(errors_path(path), "parquet")
        self.failed = 0

    def write(self, table: Any, offset: int) -> None:
        good, bad = split(table, offset, self.keep)
        if good.num_rows:
            self._out.write(good)
        if bad is not None:
            self.failed += bad.num_rows
            self._errors.write(bad)

    def finish(self) -> tuple[str, str | None]:
        """Move the files in place; return (output, errors file or None).

        When no row could be scored there is no output file (no schema to write).
        """
        if not self._out.finish():
            self._out.path.unlink(missing_ok=True)  # a stale file from an earlier run
        if self._errors.finish():
            return str(self.path), str(self._errors.path)
        self._errors.path.unlink(missing_ok=True)  # a stale file from an earlier run
        return str(self.path), None

    def abort(self) -> None:
        self._out.abort()
        self._errors.abort()


class FrameSink:
    """Every row in memory, in input order, for a DataFrame input: failed rows keep their
    place with null predictions and their reason in ``error``."""

    def __init__(self, index: Any) -> None:
        self.index = index
        self.parts: list[Any] = []
        self.failed = 0

    def write(self, table: Any, offset: int) -> None:
        import pyarrow.compute as pc

        self.failed += table.num_rows - pc.count(table.column(ERROR), mode="only_null").as_py()
        self.parts.append(table.to_pandas())

    def result(self) -> Any:
        import pandas as pd

        if not self.parts:
            return pd.DataFrame({ERROR: []}, index=self.index)
        frame = pd.concat(self.parts, ignore_index=True)
        frame = frame[[c for c in frame.columns if c != ERROR] + [ERROR]]
        frame.index = self.index
        return frame

    def abort(self) -> None:
        self.parts.clear()
