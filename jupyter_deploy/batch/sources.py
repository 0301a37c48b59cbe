"""Where a batch job's rows come from: a file, a folder, a glob, or a DataFrame.

Everything that can be wrong with the input is found here, on the driver, before any
actor starts: no file matches, mixed formats, a column to keep that no file has. The
footers of Parquet files (and the first line of CSV files) are all that is read.
"""

from __future__ import annotations

import csv
import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BatchInputError, BatchSpecError

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
NUMBER_KINDS = ("float", "integer", "bool")
# Counting the lines of CSV input for the progress bar costs a read of every byte; above
# this size the bar shows rows done and rows/s without a total.
CSV_COUNT_LIMIT = 1 << 30


@dataclass(frozen=True)
class Source:
    """The resolved input: its format, files (sorted: that is the row order) and columns."""

    kind: str  # "parquet" | "csv" | "frame"
    paths: tuple[str, ...]
    columns: tuple[str, ...]  # every column any file has, first file's order first
    common: frozenset[str]  # the columns every file has
    total_rows: int | None  # None: unknown until read (large CSV)
    frame: Any = field(default=None, compare=False, repr=False)


def _files(data: str | os.PathLike[str]) -> list[Path]:
    text = os.fspath(data)
    path = Path(text).expanduser()
    if any(ch in text for ch in "*?["):
        found = [Path(p) for p in glob.glob(str(path), recursive=True)]
    elif path.is_dir():
        found = [p for p in path.rglob("*") if p.suffix.lower() in FORMATS]
    elif path.exists():
        found = [path]
    else:
        raise BatchInputError(f"input {text} does not exist; give a file, a folder or a glob")
    files = sorted(p.resolve() for p in found if p.is_file())
    if not files:
        raise BatchInputError(f"no CSV or Parquet file matches {text}; check the path or glob")
    return files


def _kind(files: list[Path]) -> str:
    kinds = {FORMATS.get(p.suffix.lower()) for p in files}
    if None in kinds:
        odd = next(p for p in files if p.suffix.lower() not in FORMATS)
        raise BatchSpecError(f"cannot read {odd.name}: batch input must be .parquet or .csv")
    if len(kinds) > 1:
        raise BatchSpecError("the input mixes CSV and Parquet files; score them in two jobs")
    return str(kinds.pop())


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="") as f:
        return next(csv.reader(f), [])


def _csv_rows(files: list[Path]) -> int | None:
    if sum(p.stat().st_size for p in files) > CSV_COUNT_LIMIT:
        return None
    lines = 0
    for p in files:
        with open(p, "rb") as f:
            data = f.read()
        lines += data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1) - 1
    return lines  # approximate when quoted fields hold newlines: for progress only


def _check_types(schemas: list[Any]) -> None:
    """Raise if Parquet files disagree on a column's type (Ray Data cannot read them as one)."""
    import pyarrow as pa

    try:
        pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid) as exc:
        raise BatchSpecError(
            f"the input's files disagree on a column's type ({str(exc).splitlines()[0]}); "
            "cast it to one type, or score those files in separate jobs"
        ) from None


def resolve(data: Any) -> Source:
    """The :class:`Source` of ``data`` (path, folder, glob or DataFrame); raise if unusable."""
    if type(data).__name__ == "DataFrame":
        cols = tuple(str(c) for c in data.columns)
        return Source("frame", (), cols, frozenset(cols), len(data), data)
    if not isinstance(data, str | os.PathLike):
        raise BatchSpecError(
            f"cannot score a {type(data).__name__}: give a DataFrame or a CSV/Parquet path"
        )
    files = _files(data)
    kind = _kind(files)
    if kind == "parquet":
        import pyarrow.parquet as pq

        metas = [pq.read_metadata(p) for p in files]
        _check_types([m.schema.to_arrow_schema() for m in metas])
        names = [m.schema.to_arrow_schema().names for m in metas]
        total: int | None = sum(m.num_rows for m in metas)
    else:
        names = [_csv_header(p) for p in files]
        total = _csv_rows(files)
    ordered = list(dict.fromkeys(c for cols in names for c in cols))
    common = frozenset(set(names[0]).intersection(*names[1:]))
    return Source(kind, tuple(str(p) for p in files), tuple(ordered), common, total)


def check_keep(source: Source, keep: list[str], reserved: set[str]) -> None:
    """Raise unless every column to keep is in the input and clashes with no output column."""
    unknown = [c for c in keep if c not in source.columns]
    if unknown:
        shown = ", ".join(source.columns[:12]) + (" ..." if len(source.columns) > 12 else "")
        raise BatchSpecError(f"column {unknown[0]!r} to keep is not in the input ({shown})")
    clash = [c for c in keep if c in reserved or c.startswith(("prediction_", "proba_"))]
    if clash:
        raise BatchSpecError(f"cannot keep column {clash[0]!r}: the output uses that name")


def parts(source: Source, rows: int) -> list[dict[str, Any]]:
    """Parquet input as read units of about ``rows`` rows: whole row groups of one file.

    A scoring task reads its unit itself (:func:`read_part`), so the rows go from the
    file straight into the model's matrix: no read tasks, no copy through the object
    store. Units are in input order; a row group larger than ``rows`` is a unit alone.
    """
    import pyarrow.parquet as pq

    units: list[dict[str, Any]] = []
    for path in source.paths:
        meta = pq.read_metadata(path)
        groups: list[int] = []
        size = 0
        for g in range(meta.num_row_groups):
            groups.append(g)
            size += meta.row_group(g).num_rows
            if size >= rows:
                units.append({"path": path, "groups": groups})
                groups, size = [], 0
        if groups:
            units.append({"path": path, "groups": groups})
    return units


def read_part(path: str, groups: list[int], wanted: list[str]) -> Any:
    """The Arrow table of one unit: the ``wanted`` columns this file has."""
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    names = set(file.schema_arrow.names)
    return file.read_row_groups(groups, columns=[c for c in wanted if c in names])


def wanted_columns(source: Source, features: list[tuple[str, str]], keep: list[str]) -> list[str]:
    """The input columns a job reads: the kept ones and the features, each once."""
    return [c for c in dict.fromkeys([*keep, *(n for n, _ in features)]) if c in source.columns]


def dataset(source: Source, features: list[tuple[str, str]], keep: list[str], rows: int) -> Any:
    """The Ray dataset of a DataFrame or CSV ``source`` (Parquet input is planned as
    read units, :func:`parts`, for plain tasks). Only CSV is read lazily."""
    import ray.data

    if source.kind == "frame":  # blocks of ``rows`` rows, so the tasks share the work
        frame = source.frame.reset_index(drop=True)
        chunks = [frame.iloc[i : i + rows] for i in range(0, len(frame), rows)]
        return ray.data.from_pandas(chunks or [frame])
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # CSV has no types: numeric features are read as text and parsed per value by the
    # scorer, so one bad cell fails one row, not the file (and files agree on the schema).
    text = {n: pa.string() for n, kind in features if kind in NUMBER_KINDS}
    convert = pacsv.ConvertOptions(column_types=text, strings_can_be_null=True)
    return ray.data.read_csv(list(source.paths), convert_options=convert)
