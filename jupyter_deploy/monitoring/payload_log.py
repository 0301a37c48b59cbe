"""The payload log: every sampled request and response, append-only, for audit.

Replicas send their records in batches (:mod:`jupyter_deploy.payload_writer`) to one
detached actor on the head node, which appends them as JSON lines to one file per
deployment and UTC day under ``$JD_HOME/payloads/<name>/``. The files are the log: they
outlive replicas, kernels and the actor itself, and any kernel reads them back through
the actor (:func:`read_frame`), so a multi-node cluster needs no shared disk.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

PAYLOAD_LOG_NAME = "jupyter_deploy_payloads"
# "shadow" is True for a shadow version's answer (logged under the caller's request id).
COLUMNS = ["time", "request_id", "version", "method", "status", "latency_ms", "rows",
           "request", "response", "shadow"]  # fmt: skip


class PayloadLog:
    """Actor body: append batches, read ranges back. Files are opened per batch."""

    def __init__(self, root: str | None = None) -> None:
        from ..settings import Settings

        self.root = Path(root) if root else Path(Settings.from_env().home) / "payloads"
        self._dropped: dict[str, int] = {}

    def _dir(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise ValueError(f"bad deployment name {name!r}")
        return self.root / name

    def append(self, name: str, records: list[dict[str, Any]], dropped: int = 0) -> int:
        """Append ``records`` (each with a ``time``) to the day files; count drops reported."""
        if dropped:
            self._dropped[name] = self._dropped.get(name, 0) + dropped
        by_day: dict[str, list[str]] = {}
        for rec in records:
            day = time.strftime("%Y-%m-%d", time.gmtime(rec["time"]))
            by_day.setdefault(day, []).append(json.dumps(rec, separators=(",", ":")))
        folder = self._dir(name)
        folder.mkdir(parents=True, exist_ok=True)
        for day, lines in by_day.items():
            with open(folder / f"{day}.jsonl", "a", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
        return len(records)

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
    frame["shadow"] = frame["shadow"].fillna(False).astype(bool)
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
