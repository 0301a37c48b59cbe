"""Parquet and CSV parts stitched into one file equal the concatenation of their tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from jupyter_deploy.batch.sinks import parquet_writer
from jupyter_deploy.batch.stitch import CsvStitcher, ParquetStitcher


def _tables(count: int) -> list[pa.Table]:
    rng = np.random.default_rng(3)
    tables = []
    for i in range(count):
        n = int(rng.integers(1, 30_000))
        tables.append(pa.table({
            "id": np.arange(n) + i * 1_000_000,
            "region": pa.array(rng.choice(["north", "south", None], n)),
            "prediction": pa.array(rng.normal(size=n), mask=rng.random(n) < 0.1),
            "version": np.full(n, 3),
        }))  # fmt: skip
    return tables


def test_parquet_parts_become_one_file_of_their_rows_in_order(tmp_path: Path) -> None:
    tables = _tables(20)  # more row groups than a compact list header holds (15)
    stitcher = ParquetStitcher(tmp_path / "out.parquet")
    for i, table in enumerate(tables):
        part = tmp_path / f"{i}.parquet"
        with parquet_writer(part, table.schema) as writer:
            writer.write_table(table)
        assert stitcher.fits(part)
        stitcher.append(part)
    assert stitcher.close()

    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
    assert (meta.num_row_groups, meta.num_rows) == (20, sum(t.num_rows for t in tables))
    assert pq.read_table(tmp_path / "out.parquet").equals(pa.concat_tables(tables))
    last = pq.read_table(tmp_path / "out.parquet", filters=[("id", ">=", 19_000_000)])
    assert last.equals(tables[-1])  # row-group statistics point at the right chunks


def test_a_part_with_a_page_index_is_refused(tmp_path: Path) -> None:
    table = _tables(1)[0]
    part = tmp_path / "indexed.parquet"
    pq.write_table(table, part, write_page_index=True)
    stitcher = ParquetStitcher(tmp_path / "out.parquet")
    with pytest.raises(ValueError, match="page index"):
        stitcher.append(part)
    stitcher.abort()
    assert not (tmp_path / "out.parquet").exists()


def test_a_part_of_another_schema_does_not_fit_and_no_part_means_no_file(tmp_path: Path) -> None:
    first, other = _tables(2)
    other = other.set_column(0, "id", other.column("id").cast(pa.int32()))
    for name, table in (("a", first), ("b", other)):
        with parquet_writer(tmp_path / f"{name}.parquet", table.schema) as writer:
            writer.write_table(table)
    stitcher = ParquetStitcher(tmp_path / "out.parquet")
    stitcher.append(tmp_path / "a.parquet")
    assert not stitcher.fits(tmp_path / "b.parquet")
    stitcher.abort()
    assert not (tmp_path / "out.parquet").exists()
    assert not ParquetStitcher(tmp_path / "none.parquet").close()
    assert not (tmp_path / "none.parquet").exists()


def test_csv_parts_keep_one_header(tmp_path: Path) -> None:
    tables = _tables(3)
    stitcher = CsvStitcher(tmp_path / "out.csv")
    for i, table in enumerate(tables):
        with open(tmp_path / f"{i}.csv", "wb") as f:
            pacsv.write_csv(table.slice(0, 0), f)
            header = f.tell()
            pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False))
        stitcher.append(tmp_path / f"{i}.csv", header)
    assert stitcher.close()
    back = pacsv.read_csv(tmp_path / "out.csv")
    assert back.num_rows == sum(t.num_rows for t in tables)
    assert back.column("id").to_pylist() == pa.concat_tables(tables).column("id").to_pylist()
