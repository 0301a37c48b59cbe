"""The replica's side of the payload log: sample, buffer, send in the background.

A prediction must never wait for, or fail because of, the audit log. So
:meth:`PayloadWriter.log` only appends a tuple of what it is given to a bounded
in-memory buffer (records beyond :data:`BUFFER` are dropped and counted), and a
background task sends the buffer to the log actor (:mod:`jupyter_deploy.payload_log`)
every :data:`SEND_S` seconds without waiting for the answer. At most :data:`IN_FLIGHT`
batches may be unanswered: when the sink is slow or gone, batches stay in the buffer,
then new records are dropped.

At shipping time, so the request never pays for it, the bodies are decoded (and cut at
:data:`MAX_BODY_CHARS`), fields named in the spec's ``log_redact`` are removed from
request bodies (:func:`redact`), and the batch is encoded into the log's JSON lines
(:func:`~jupyter_deploy.monitoring.payload_log.encode`): the actor only appends text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from ..monitoring.payload_log import PayloadRecord, encode

BUFFER = 20_000
SEND_S = 0.5
IN_FLIGHT = 4
MAX_BODY_CHARS = 100_000  # longer bodies are cut (and marked) so one request cannot flood
_log = logging.getLogger("ray.serve")
# What a body becomes when redaction is on and it cannot be read as {"instances": [...]}:
# an unparsed body may hold the very fields to drop.
WITHHELD = "[withheld: not a JSON instances body, and redaction is on]"


def redact(text: str, fields: frozenset[str], columns: list[str] | None) -> str:
    """``text`` (a request body) without ``fields``: dropped from records, nulled in rows.

    Rows (lists in the schema's column order) keep their length so every value still
    lines up with its column.
    """
    try:
        payload = json.loads(text)
    except ValueError:
        return WITHHELD
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list):
        return WITHHELD
    hidden = {i for i, c in enumerate(columns or []) if c in fields}
    out: list[Any] = []
    for inst in instances:
        if isinstance(inst, dict):
            out.append({k: v for k, v in inst.items() if k not in fields})
        elif isinstance(inst, list):
            if columns is None:
                return WITHHELD
            out.append([None if i in hidden else v for i, v in enumerate(inst)])
        else:
            out.append(inst)
    return json.dumps({**payload, "instances": out}, separators=(",", ":"))


def _text(body: bytes) -> str:
    text = body[: MAX_BODY_CHARS + 1].decode("utf-8", errors="replace")
    return text if len(text) <= MAX_BODY_CHARS else text[:MAX_BODY_CHARS] + "…[truncated]"


class PayloadWriter:
    """Buffers one replica's sampled records and ships them to the log in batches.

    ``send(lines, dropped)`` starts the shipping of one batch (JSON lines by day, as
    :func:`~jupyter_deploy.monitoring.payload_log.encode` makes them) and returns
    something ``done(ref)`` can test without blocking (a Ray ObjectRef in replicas).
    """

    def __init__(
        self,
        sample_rate: float,
        send: Callable[[dict[str, str], int], Any],
        done: Callable[[Any], bool],
        redact_fields: frozenset[str] = frozenset(),
    ) -> None:
        self.sample_rate = sample_rate
        self.redact_fields = redact_fields
        self.columns: dict[int, list[str]] = {}  # each loaded version's input columns
        self._send, self._done = send, done
        self._buffer: list[tuple[Any, ...]] = []  # log()'s arguments, with the time
        self._in_flight: list[Any] = []
        self.dropped = 0  # dropped since the last batch was handed over
        self.dropped_total = 0
        self._task: asyncio.Task[None] | None = None

    def sampled(self) -> bool:
        return self.sample_rate >= 1.0 or random.random() < self.sample_rate

    def log(
        self,
        request_id: str,
        version: int,
        method: str,
        status: int,
        latency_ms: float,
        rows: int,
        request: bytes,
        response: bytes,
        shadow: bool = False,
    ) -> None:
        """Queue one record; never blocks, never raises into the request.

        ``shadow``: the answer of a shadow version, which the caller never saw.
        """
        if len(self._buffer) >= BUFFER:
            self.dropped += 1
            self.dropped_total += 1
            return
        cut = MAX_BODY_CHARS + 1  # bytes kept until shipping; no copy of a short body
        self._buffer.append((time.time(), request_id, version, method, status, latency_ms,
                             rows, request[:cut], response[:cut], shadow))  # fmt: skip
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._send_forever())

    def ship(self) -> None:
        """Hand the buffer to the sink if fewer than IN_FLIGHT batches are unanswered."""
        self._in_flight = [ref for ref in self._in_flight if not self._done(ref)]
        if (not self._buffer and not self.dropped) or len(self._in_flight) >= IN_FLIGHT:
            return
        batch, self._buffer = self._buffer, []
        lines, kept = self._encode(batch)
        dropped, self.dropped = self.dropped, 0
        try:
            self._in_flight.append(self._send(lines, dropped))
        except Exception:  # the sink is gone: these records are lost, serving goes on
            self.dropped_total += kept
            _log.warning("payload log unavailable; %d records dropped", kept)

    def _encode(self, batch: list[tuple[Any, ...]]) -> tuple[dict[str, str], int]:
        """The batch as the log's lines, and how many records they hold. A record that
        cannot be encoded (a bug here, not the sink's) is dropped and counted alone."""
        try:
            return encode(map(self._record, batch)), len(batch)
        except Exception:
            pass
        by_day: dict[str, list[str]] = {}
        errors: list[Exception] = []
        for logged in batch:
            try:
                for day, text in encode([self._record(logged)]).items():
                    by_day.setdefault(day, []).append(text)
            except Exception as err:
                errors.append(err)
        if errors:
            self.dropped += len(errors)
            self.dropped_total += len(errors)
            _log.warning("could not encode %d payload records; dropped", len(errors),
                         exc_info=errors[0])  # fmt: skip
        return {day: "".join(texts) for day, texts in by_day.items()}, len(batch) - len(errors)

    def _record(self, logged: tuple[Any, ...]) -> PayloadRecord:
        """What :meth:`log` queued, as the log's record: bodies as text, redacted."""
        t, request_id, version, method, status, latency_ms, rows, request, response, shadow = logged
        text = _text(request)
        if self.redact_fields:
            text = redact(text, self.redact_fields, self.columns.get(version))
        return PayloadRecord(t, request_id, version, method, status, round(latency_ms, 3),
                             rows, text, _text(response), shadow)  # fmt: skip

    async def _send_forever(self) -> None:
        while True:
            await asyncio.sleep(SEND_S)
            self.ship()
