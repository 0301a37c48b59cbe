"""One output file from the parts the scoring tasks wrote, without decoding a value.

Each scoring task writes its block's scored rows as a part file of its own (encoding
Parquet is the costly half of writing, and the tasks do it side by side); the driver
appends the parts, in input order, to the one output file.

CSV: the bytes of the parts, each after the first without its header line. Parquet: a
file is ``PAR1``, the column chunks of its row groups, then a footer (Thrift compact
protocol) that says where each chunk starts. The parts' chunks are copied as they are,
and one footer lists every part's row groups with their offsets moved by where the part
landed: no page is decoded or re-encoded. Parts must share one Parquet schema
(:meth:`ParquetStitcher.fits` says whether one does; the caller rewrites one that does
not).
"""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path
from typing import Any

MAGIC = b"PAR1"
# Compact protocol types.
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)
# Footer fields: FileMetaData num_rows, row_groups; RowGroup columns, file_offset, ordinal;
# ColumnChunk file_offset, meta_data, offset_index_offset, column_index_offset;
# ColumnMetaData data_page_offset, index_page_offset, dictionary_page_offset,
# bloom_filter_offset.
_NUM_ROWS, _ROW_GROUPS, _SCHEMA = 3, 4, 2
_RG_COLUMNS, _RG_OFFSETS, _RG_ORDINAL = 1, {5}, 7
_CC_META, _CC_OFFSETS = 3, {2}
_CC_PAGE_INDEX = {4, 6}  # where a page index is: it holds page offsets we do not move
_CM_OFFSETS = {9, 10, 11, 14}


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, kind: int) -> Any:
        if kind in (_TRUE, _FALSE):  # a bool in a list: one byte of its own
            return self.byte()
        if kind == _BYTE:
            return self.byte()
        if kind in (_I16, _I32, _I64):
            return self.zigzag()
        if kind == _DOUBLE:
            self.pos += 8
            return self.data[self.pos - 8 : self.pos]
        if kind == _BINARY:
            n = self.varint()
            self.pos += n
            return self.data[self.pos - n : self.pos]
        if kind in (_LIST, _SET):
            head = self.byte()
            size, elem = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            return (elem, [self.value(elem) for _ in range(size)])
        if kind == _MAP:
            size = self.varint()
            types = self.byte() if size else 0
            k, v = types >> 4, types & 0x0F
            return (types, [(self.value(k), self.value(v)) for _ in range(size)])
        if kind == _STRUCT:
            return self.struct()
        raise ValueError(f"not a Parquet footer (Thrift type {kind})")

    def struct(self) -> list[list[Any]]:
        """Fields as ``[id, type, value]`` (a bool field's value is its type)."""
        fields: list[list[Any]] = []
        last = 0
        while (head := self.byte()) != 0:
            delta, kind = head >> 4, head & 0x0F
            fid = last + delta if delta else self.zigzag()
            value = None if kind in (_TRUE, _FALSE) else self.value(kind)
            fields.append([fid, kind, value])
            last = fid
        return fields


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def varint(self, n: int) -> None:
        while n > 0x7F:
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7
        self.out.append(n)

    def zigzag(self, n: int) -> None:
        self.varint((n << 1) ^ (n >> 63))

    def value(self, kind: int, v: Any) -> None:
        if kind in (_TRUE, _FALSE, _BYTE):
            self.out.append(v)
        elif kind in (_I16, _I32, _I64):
            self.zigzag(v)
        elif kind == _DOUBLE:
            self.out += v
        elif kind == _BINARY:
            self.varint(len(v))
            self.out += v
        elif kind in (_LIST, _SET):
            elem, items = v
            if len(items) < 15:
                self.out.append(len(items) << 4 | elem)
            else:
                self.out.append(0xF0 | elem)
                self.varint(len(items))
            for item in items:
                self.value(elem, item)
        elif kind == _MAP:
            types, items = v
            self.varint(len(items))
            if items:
                self.out.append(types)
            for k, val in items:
                self.value(types >> 4, k)
                self.value(types & 0x0F, val)
        else:
            self.struct(v)

    def struct(self, fields: list[list[Any]]) -> None:
        last = 0
        for fid, kind, v in fields:
            if 0 < fid - last <= 15:
                self.out.append((fid - last) << 4 | kind)
            else:
                self.out.append(kind)
                self.zigzag(fid)
            if kind not in (_TRUE, _FALSE):
                self.value(kind, v)
            last = fid
        self.out.append(0)


def _field(fields: list[list[Any]], fid: int) -> list[Any] | None:
    return next((f for f in fields if f[0] == fid), None)


def _shift(fields: list[list[Any]], ids: set[int], by: int) -> None:
    for f in fields:
        if f[0] in ids:
            f[2] += by


def footer(path: str | os.PathLike[str]) -> tuple[list[list[Any]], int]:
    """(the decoded FileMetaData, where the footer starts) of a Parquet file."""
    with open(path, "rb") as f:
        f.seek(-8, os.SEEK_END)
        tail = f.read(8)
        if tail[4:] != MAGIC:
            raise ValueError(f"{path} is not a Parquet file")
        length = struct.unpack("<I", tail[:4])[0]
        start = f.seek(-8 - length, os.SEEK_END)
        return _Reader(f.read(length)).struct(), start


class ParquetStitcher:
    """Appends Parquet parts of one schema to ``path``; :meth:`close` writes the footer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "wb")  # noqa: SIM115 (closed in close/abort)
        self._file.write(MAGIC)
        self._meta: list[list[Any]] | None = None
        self._groups: list[Any] = []
        self._rows = 0

    def fits(self, part: str | os.PathLike[str]) -> bool:
        """Whether ``part`` has the Parquet schema of the parts before it (or is the first)."""
        if self._meta is None:
            return True
        meta, _ = footer(part)
        return _field(meta, _SCHEMA) == _field(self._meta, _SCHEMA)

    @staticmethod
    def _no_page_index(part: str | os.PathLike[str], meta: list[list[Any]]) -> None:
        groups = _field(meta, _ROW_GROUPS)
        for group in groups[2][1] if groups else []:
            for chunk in _field(group, _RG_COLUMNS)[2][1]:  # type: ignore[index]
                if any(f[0] in _CC_PAGE_INDEX for f in chunk):
                    raise ValueError(f"{part} has a page index, which stitching would break")

    def append(self, part: str | os.PathLike[str], header: int = 0) -> None:
        meta, end = footer(part)
        self._no_page_index(part, meta)
        by = self._file.tell() - len(MAGIC)  # the part's offsets count from its own start
        with open(part, "rb") as f:
            f.seek(len(MAGIC))
            remaining = end - len(MAGIC)
            while remaining > 0:
                chunk = f.read(min(remaining, 1 << 20))
                self._file.write(chunk)
                remaining -= len(chunk)
        rows = _field(meta, _NUM_ROWS)
        groups = _field(meta, _ROW_GROUPS)
        self._rows += rows[2] if rows else 0
        for group in groups[2][1] if groups else []:
            _shift(group, _RG_OFFSETS, by)
            for chunk in _field(group, _RG_COLUMNS)[2][1]:  # type: ignore[index]
                _shift(chunk, _CC_OFFSETS, by)
                column = _field(chunk, _CC_META)
                if column is not None:
                    _shift(column[2], _CM_OFFSETS, by)
            ordinal = _field(group, _RG_ORDINAL)
            if ordinal is not None:
                ordinal[2] = len(self._groups)
            self._groups.append(group)
        if self._meta is None:
            self._meta = meta

    def close(self) -> bool:
        """Write the footer; False (and no file) when no part was appended."""
        if self._meta is None:
            self.abort()
            return False
        meta = [list(f) for f in self._meta]
        for f in meta:
            if f[0] == _NUM_ROWS:
                f[2] = self._rows
            elif f[0] == _ROW_GROUPS:
                f[2] = (_STRUCT, self._groups)
        w = _Writer()
        w.struct(meta)
        self._file.write(bytes(w.out) + struct.pack("<I", len(w.out)) + MAGIC)
        self._file.close()
        return True

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


class CsvStitcher:
    """Appends CSV parts to ``path``: the first whole, the others without their header."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "wb")  # noqa: SIM115 (closed in close/abort)
        self._any = False

    def fits(self, part: str | os.PathLike[str]) -> bool:
        return True  # the parts' columns are the job's: the same names in the same order

    def append(self, part: str | os.PathLike[str], header: int = 0) -> None:
        """Append ``part``, whose first ``header`` bytes are its header line."""
        with open(part, "rb") as f:
            if self._any:
                f.seek(header)
            shutil.copyfileobj(f, self._file, 1 << 20)
        self._any = True

    def close(self) -> bool:
        self._file.close()
        if not self._any:
            self.path.unlink(missing_ok=True)
        return self._any

    def abort(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)
