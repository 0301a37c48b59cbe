"""The payload log: every sampled request and response, append-only, for audit.

Replicas send their records in batches (:mod:`jupyter_deploy.payload_writer`) to one
detached actor on the head node, which appends them as JSON lines to one file per
deployment and UTC day under ``$JD_HOME/payloads/<name>/``. A replica sends the lines
already encoded (:func:`encode`), grouped by day: the actor only writes, so the log's
cost stays in the replicas, which scale out, not in one actor on a loaded head node.
The files are the log: they outlive replicas, kernels and the actor itself, and any
kernel reads them back through the actor (:meth:`PayloadLog.read`), so a multi-node cluster
needs no shared disk.

Request bodies are personal data more often than not: folders are ``0700`` and files
``0600`` (:mod:`jupyter_deploy.private`), and day files older than the deployment's
``log_retention_days`` are deleted when its replicas next write (checked once an hour).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii as _string
from pathlib import Path
from typing import Any, NamedTuple

from .. import private

PRUNE_EVERY_S = 3600.0
PAYLOAD_LOG_NAME = "jupyter_deploy_payloads"
# "shadow" is True for a shadow version's answer (logged under the caller's request id).
COLUMNS = ["time", "request_id", "version", "method", "status", "latency_ms", "rows",
           "request", "response", "shadow"]  # fmt: skip


class PayloadRecord(NamedTuple):
    """One logged request and its answer; a line of the log (:data:`COLUMNS`, in order)."""

    time: float
    request_id: str
    version: int
    method: str
    status: int
    latency_ms: float
    rows: int
    request: str
    response: str
    shadow: bool = False


def _day(t: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(t))


def _line(r: PayloadRecord) -> str:
    """``json.dumps(r._asdict(), separators=(",", ":"))``, without "shadow" when False,
    in a third of the time: the fields' names and kinds are known (tests check the two
    agree)."""
    line = (
        f'{{"time":{float(r.time)!r},"request_id":{_string(r.request_id)},'
        f'"version":{int(r.version)},"method":{_string(r.method)},"status":{int(r.status)},'
        f'"latency_ms":{float(r.latency_ms)!r},"rows":{int(r.rows)},'
        f'"request":{_string(r.request)},"response":{_string(r.response)}'
    )
    return line + (',"shadow":true}' if r.shadow else "}")


def encode(records: Iterable[PayloadRecord]) -> dict[str, str]:
    """Records as JSON lines, by UTC day: what :meth:`PayloadLog.append` takes."""
    by_day: dict[str, list[str]] = {}
    records = list(records)
    if records and _day(records[0].time) == _day(records[-1].time):
        # A replica's batch spans half a second: one day, found once, not per record.
        by_day[_day(records[0].time)] = [_line(rec) for rec in records]
    else:
        for rec in records:
            by_day.setdefault(_day(rec.time), []).append(_line(rec))
    return {day: "\n".join(lines) + "\n" for day, lines in by_day.items()}


class PayloadLog:
    """Actor body: append batches, read ranges back. Files are opened per batch."""

    def __init__(self, root: str | None = None) -> None:
        from ..settings import Settings

        self.root = Path(root) if root else Path(Settings.from_env().home) / "payloads"
        self._dropped: dict[str, int] = {}
        self._pruned: dict[str, float] = {}  # when each deployment's files were last pruned

    def _dir(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad deployment name {name!r}")
        return self.root / name

    def append(
        self,
        name: str,
        lines: dict[str, str],
        dropped: int = 0,
        retention_days: int | None = None,
    ) -> None:
        """Append lines (:func:`encode`'s, by day) to the day files; count drops reported.

        With ``retention_days``, older day files are deleted (at most once an hour).
        """
        if dropped:
            self._dropped[name] = self._dropped.get(name, 0) + dropped
        private.make_dir(self.root)
        folder = private.make_dir(self._dir(name))
        for day, text in lines.items():
            if len(day) != 10 or not day.replace("-", "").isdigit():
                raise ValueError(f"bad day {day!r}")
            private.append_text(folder / f"{day}.jsonl", text)
        now = time.time()
        if retention_days and now - self._pruned.get(name, 0.0) >= PRUNE_EVERY_S:
            self.prune(name, retention_days, now)

    def prune(self, name: str, retention_days: int, now: float | None = None) -> list[str]:
        """Delete ``name``'s day files older than ``retention_days`` days; their names."""
        now = time.time() if now is None else now
        self._pruned[name] = now
        cutoff = time.strftime("%Y-%m-%d", time.gmtime(now - retention_days * 86400))
        folder = self._dir(name)
        gone = [p for p in folder.glob("*.jsonl") if p.stem < cutoff] if folder.is_dir() else []
        for path in gone:
            path.unlink(missing_ok=True)
        return sorted(p.name for p in gone)

    def read(
        self, name: str, since: float | None = None, until: float | None = None, limit: int = 0
    ) -> list[dict[str, Any]]:
        """Records of ``name`` with ``since <= time < until``, oldest first (last ``limit``)."""
        folder = self._dir(name)
        if not folder.is_dir():
            return []
        first_day = time.strftime("%Y-%m-%d", time.gmtime(since)) if since else ""
        out: list[dict[str, Any]] = []
        for path in sorted(folder.glob("*.jsonl")):
            if path.stem < first_day:
                continue  # a whole day before `since`: not even opened
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if not line.strip():
                        continue
                    rec = json.loads(line)
                    if (since is None or rec["time"] >= since) and (
                        until is None or rec["time"] < until
                    ):
                        out.append(rec)
        return out[-limit:] if limit else out

    def stats(self, name: str) -> dict[str, Any]:
        """Files, bytes and records dropped by replicas (buffer full or sink too slow)."""
        folder = self._dir(name)
        files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
        return {
            "path": str(folder),
            "files": [p.name for p in files],
            "bytes": sum(os.path.getsize(p) for p in files),
            "dropped": self._dropped.get(name, 0),
        }


def handle(create: bool = True) -> Any:
    """The payload log actor of the connected cluster (created on first use)."""
    from .._ray import named_actor

    return named_actor(PayloadLog, PAYLOAD_LOG_NAME, create)


def to_frame(records: list[dict[str, Any]]) -> Any:
    """Records as a DataFrame; ``request``/``response`` bodies parsed from JSON when they are."""
    import pandas as pd

    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    # Records written before shadows have no such field: all-missing is a float column,
    # which fillna(False) would have to cast (deprecated in pandas 3); nullable bools don't.
    frame["shadow"] = frame["shadow"].astype("boolean").fillna(False).astype(bool)
    for column in ("request", "response"):
        frame[column] = [_parsed(v) for v in frame[column]]
    return frame


def _parsed(body: Any) -> Any:
    if not isinstance(body, str):
        return body
    try:
        return json.loads(body)
    except ValueError:
        return body
