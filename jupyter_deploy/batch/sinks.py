"""Where scored rows go: a Parquet or CSV file (streamed), or a DataFrame in memory.

The scorer returns every input row with an ``error`` column, split into scored rows (the
output) and failed rows (``<output>.errors.parquet``, with their row number and reason).
For a file output each scoring task writes its block's scored rows as a part file
(:func:`write_part`, in ``<output>.parts``) and hands back only a manifest; the driver
appends the parts in input order into the one output (:mod:`.stitch`: no value decoded
again) and writes the failed rows. Blocks arrive in input order, so a row's number is
the count of rows before its block plus its place in it. Files are written as
``.partial`` and renamed when the job finishes: a failed job leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from ..errors import BatchOutputExistsError, BatchSpecError
from .records import ERROR, ROW
from .stitch import CsvStitcher, ParquetStitcher

OUTPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
DICTIONARY_PAGE = 1 << 16


def errors_path(output: Path) -> Path:
    return output.with_name(output.name + ".errors.parquet")


def parquet_writer(path: Any, schema: Any) -> Any:
    """pyarrow's writer with the job's settings (snappy, pyarrow's default compression).

    A small dictionary page: a column of unique values (an id) stops trying dictionary
    encoding after 8k values instead of 131k (75 ms -> 12 ms a block); a column of few
    values (a class, a region) still gets it. No page index: the stitcher (stitch.py) moves
    the footer's offsets only, and a page index holds page offsets of its own.
    """
    import pyarrow.parquet as pq

    return pq.ParquetWriter(path, schema, dictionary_pagesize_limit=DICTIONARY_PAGE,
                            write_page_index=False)  # fmt: skip


def write_part(table: Any, folder: str, kind: str, keep: list[str]) -> dict[str, Any]:
    """In a scoring task: the block's scored rows as a part file in ``folder``, its failed
    rows (numbered within the block) as an errors part; the manifest row of the block."""
    good, bad = split(table, 0, keep)
    name = os.path.join(folder, uuid.uuid4().hex)
    row = {"rows": table.num_rows, "part": "", "header": 0, "failed": 0, "errors": ""}
    if good.num_rows and kind == "csv":
        import pyarrow.csv as pacsv

        with open(name + ".csv", "wb") as f:
            pacsv.write_csv(good.slice(0, 0), f)
            row["header"] = f.tell()
            pacsv.write_csv(good, f, pacsv.WriteOptions(include_header=False))
        row["part"] = name + ".csv"
    elif good.num_rows:
        with parquet_writer(name + ".parquet", good.schema) as writer:
            writer.write_table(good)
        row["part"] = name + ".parquet"
    if bad is not None:
        with parquet_writer(name + ".errors.parquet", bad.schema) as writer:
            writer.write_table(bad)
        row.update(failed=bad.num_rows, errors=name + ".errors.parquet")
    return row


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
    """One streamed Parquet file (the errors file: the output itself is stitched from the
    tasks' parts); its schema is the first block's, later blocks are cast to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self._file: Any = None
        self._schema: Any = None

    def write(self, table: Any) -> None:
        if self._file is None:
            self._schema = table.schema
            self._file = parquet_writer(self.partial, table.schema)
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
    """Scored rows to ``output`` (format by extension), failed rows beside it: the tasks'
    parts (:func:`write_part`, in :attr:`parts`) stitched in the order of the manifests."""

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
        self.path, self.keep, self.kind = path, keep, kind
        # Where the tasks write (on a cluster of several nodes: a folder they all see,
        # as they all read the input).
        self.parts = path.with_name(path.name + ".parts")
        shutil.rmtree(self.parts, ignore_errors=True)  # a crashed job's leftovers
        self.parts.mkdir()
        self._partial = path.with_name(path.name + ".partial")
        self._out: CsvStitcher | ParquetStitcher = (
            CsvStitcher(self._partial) if kind == "csv" else ParquetStitcher(self._partial)
        )
        self._schema: Any = None  # the first Parquet part's, for a part that differs
        self._errors = _Writer(errors_path(path))
        self.failed = 0

    def write(self, manifest: Any, offset: int) -> int:
        """Stitch the parts of a manifest (:func:`write_part`'s rows, as a list or an Arrow
        block) in order; the number of input rows it covers."""
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        rows = 0
        for entry in manifest if isinstance(manifest, list) else manifest.to_pylist():
            if entry["part"]:
                part = entry["part"]
                if self._schema is None and self.kind == "parquet":
                    self._schema = pq.read_schema(part)
                if not self._out.fits(part):  # e.g. files whose id column is int32, int64
                    part = self._rewrite(part)
                self._out.append(part, entry["header"])
            if entry["errors"]:
                bad = pq.read_table(entry["errors"])
                row = pc.add(bad.column(ROW), offset + rows)
                self._errors.write(bad.set_column(0, ROW, row))
                self.failed += entry["failed"]
            rows += entry["rows"]
            for name in ("part", "errors"):
                if entry[name]:
                    Path(entry[name]).unlink(missing_ok=True)
        return rows

    def _rewrite(self, part: str) -> str:
        """A Parquet part cast to the first part's schema (the previous sink did the same)."""
        import pyarrow.parquet as pq

        table = pq.read_table(part).select(self._schema.names).cast(self._schema)
        with parquet_writer(part + ".cast", self._schema) as writer:
            writer.write_table(table)
        Path(part).unlink()
        return part + ".cast"

    def finish(self) -> tuple[str, str | None]:
        """Move the files in place; return (output, errors file or None).

        When no row could be scored there is no output file (no schema to write).
        """
        shutil.rmtree(self.parts, ignore_errors=True)
        if self._out.close():
            os.replace(self._partial, self.path)
        else:
            self.path.unlink(missing_ok=True)  # a stale file from an earlier run
        if self._errors.finish():
            return str(self.path), str(self._errors.path)
        self._errors.path.unlink(missing_ok=True)  # a stale file from an earlier run
        return str(self.path), None

    def abort(self) -> None:
        self._out.abort()
        self._errors.abort()
        shutil.rmtree(self.parts, ignore_errors=True)


class FrameSink:
    """Every row in memory, in input order, for a DataFrame input: failed rows keep their
    place with null predictions and their reason in ``error``."""

    def __init__(self, index: Any) -> None:
        self.index = index
        self.parts: list[Any] = []
        self.failed = 0

    def write(self, table: Any, offset: int) -> int:
        import pyarrow.compute as pc

        self.failed += table.num_rows - pc.count(table.column(ERROR), mode="only_null").as_py()
        self.parts.append(table.to_pandas())
        return int(table.num_rows)

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
