"""Stream consumers: detached Ray actors that score a broker's messages with a deployment.

Each consumer holds one broker connection and a :class:`~jupyter_deploy.batch.scorer.
Scorer` per version it scores with (the Bento loaded as a replica loads it, so a message
is accepted exactly when the endpoint would accept its record). Its loop, in a thread of
its own so the actor outlives the kernel that started it: first the messages it took
under the same name before a restart and never acknowledged, then, each turn, messages a
dead consumer left unacknowledged (after ``claim_idle_ms``) and new ones, scored as one
batch; each result is published together with its acknowledgement, and messages the
runtime refuses go to the dead-letter stream with their reason. Delivery is at least
once: a consumer that dies before the answer is published leaves its messages pending.

**Which version scores a message.** A stream recorded with a version scores with it.
Otherwise the consumer re-reads the deployment's record from the registry at most every
:data:`FOLLOW_S` between batches, so a promotion, rollback or new deploy reaches it within
about a second; with a split, each message picks its version by the weights (at random,
or by a stable hash of the split's sticky field when the message has it), as a request
to the endpoint would. A shadow version gets no stream messages.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..batch.records import BatchTarget
from ..batch.scorer import Scorer
from ..control.records import DeploymentRecord, StreamRecord
from .broker import Message, RedisStreams

BLOCK_MS = 500  # how long a read waits: also how soon stop() is noticed
FOLLOW_S = 1.0  # how often a following consumer re-reads the live version and split
RATE_S = 10.0  # events/s is measured over this window
PASSTHROUGH = "id"  # a message field copied to its answer, not given to the model
_log = logging.getLogger(__name__)


def record(msg: Message) -> Any:
    """The model instance of a message: its ``data`` field (JSON), else its other fields."""
    if "data" in msg.fields:
        try:
            return json.loads(msg.fields["data"])
        except ValueError:
            return msg.fields["data"]  # the runtime names what is wrong with it
    return {k: _value(v) for k, v in msg.fields.items() if k != PASSTHROUGH}


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def config_of(rec: StreamRecord) -> RedisStreams:
    return RedisStreams(rec.url, rec.input, rec.output, rec.group, rec.dead_letter)


@dataclass
class StreamStats:
    """What one consumer did since it (re)started, and the group's backlog now."""

    consumer: str
    read: int = 0
    scored: int = 0  # answered
    failed: int = 0  # in batches that raised: left pending, claimed again later
    dead_lettered: int = 0  # refused by the runtime, moved with their reason
    claimed: int = 0  # taken over from consumers that never acknowledged them
    events_per_s: float = 0.0
    pending: int = 0
    unread: int = 0
    versions: tuple[int, ...] = ()  # the versions it scores with now
    running: bool = True


@dataclass(frozen=True)
class Plan:
    """The versions a consumer scores with: cumulative weights, and a sticky field."""

    versions: tuple[int, ...]
    edges: tuple[float, ...]
    sticky: str | None = None

    @classmethod
    def of(cls, rec: DeploymentRecord, pinned: int | None) -> Plan:
        traffic = rec.traffic if pinned is None else None
        if traffic is None:
            assert pinned is not None or rec.live is not None
            return cls((pinned if pinned is not None else rec.live,), (1.0,))  # type: ignore[arg-type]
        order = sorted(v for v, w in traffic.weights.items() if w > 0)
        total, acc, edges = sum(traffic.weights[v] for v in order), 0.0, []
        for v in order:
            acc += traffic.weights[v] / total
            edges.append(acc)
        return cls(tuple(order), tuple(edges), traffic.sticky)

    def pick(self, msg: Message, instance: Any) -> int:
        if len(self.versions) == 1:
            return self.versions[0]
        from ..replica.router import unit

        key = instance.get(self.sticky) if self.sticky and isinstance(instance, dict) else None
        u = unit(str(key)) if key is not None else random.random()
        return self.versions[min(bisect.bisect_right(self.edges, u), len(self.versions) - 1)]


class StreamConsumer:
    """Actor body: the loop runs in a thread started here; ``stats``/``stop`` are calls."""

    def __init__(self, rec: StreamRecord, index: int, password: str | None = None) -> None:
        self.rec, self.name = rec, f"{rec.name}-{index}"
        self.broker = config_of(rec).connect(self.name, password)
        self._scorers: dict[int, Scorer] = {}
        self._deployment: DeploymentRecord | None = None
        self._plan = self._follow(force=True)
        self._checked = time.monotonic()
        self._stats = StreamStats(self.name)
        self._recent: deque[tuple[float, int]] = deque()
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jd-stream", daemon=True)
        self._thread.start()

    # -- the loop -----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():  # first what it held before a restart, if any
            msgs = self.broker.own_pending(self.rec.batch)
            if not msgs or not self._handle(msgs):
                break
        while not self._stop.is_set():
            msgs = self.broker.claim_stale(self.rec.claim_idle_ms, self.rec.batch)
            self._stats.claimed += len(msgs)
            if len(msgs) < self.rec.batch:
                msgs += self.broker.read(self.rec.batch - len(msgs), BLOCK_MS)
            if msgs:
                self._handle(msgs)
            if time.monotonic() - self._checked >= FOLLOW_S:
                self._plan = self._follow()
        self._stats.running = False

    def _follow(self, force: bool = False) -> Plan:
        """The versions to score with, from the registry (kept if it cannot answer)."""
        import ray

        from ..control.registry import handle

        self._checked = time.monotonic()
        if self.rec.version is not None and not force:
            return self._plan
        try:
            rec = ray.get(handle(create=False).get.remote(self.rec.name), timeout=10)
        except Exception:
            if force:
                raise
            _log.warning("could not read %s's live version", self.rec.name, exc_info=True)
            return self._plan
        if rec is None or rec.live is None:  # deleted: the deleter stops us
            return self._plan
        self._deployment = rec
        return Plan.of(rec, self.rec.version)

    def _scorer(self, version: int) -> Scorer:
        if version not in self._scorers:
            assert self._deployment is not None
            target = BatchTarget.from_version(self.rec.name, self._deployment.version(version))
            self._scorers[version] = Scorer(target, self.rec.method, [], self.rec.batch)
        return self._scorers[version]

    def _handle(self, msgs: list[Message]) -> bool:
        """Score and answer ``msgs``; False if the batch failed (they stay pending)."""
        self._stats.read += len(msgs)
        ok = True
        try:
            by_version: dict[int, list[tuple[Message, Any]]] = {}
            for m in msgs:
                instance = record(m)
                by_version.setdefault(self._plan.pick(m, instance), []).append((m, instance))
            for version, group in sorted(by_version.items()):
                self._score(version, group)
        except Exception:  # the broker or the model failed: they stay pending, to be claimed
            _log.warning("a batch of %d messages failed", len(msgs), exc_info=True)
            self._stats.failed += len(msgs)
            self._stop.wait(1.0)
            ok = False
        self._count(len(msgs))
        return ok

    def _score(self, version: int, group: list[tuple[Message, Any]]) -> None:
        predictions, errors = self._scorer(version).score_rows([i for _, i in group])
        good = [m for i, (m, _) in enumerate(group) if i not in errors]
        values = [] if predictions is None else predictions.tolist()
        done = []
        for msg, value in zip(good, values, strict=True):
            answer = {"source_id": msg.id, "prediction": json.dumps(value),
                      "version": str(version)}  # fmt: skip
            if PASSTHROUGH in msg.fields:
                answer[PASSTHROUGH] = msg.fields[PASSTHROUGH]
            done.append((msg, answer))
        if done:
            self.broker.answer(done)
        if errors:
            self.broker.dead_letter([(group[i][0], reason) for i, reason in errors.items()])
        self._stats.scored += len(done)
        self._stats.dead_lettered += len(errors)

    def _count(self, n: int) -> None:
        now = time.monotonic()
        self._recent.append((now, n))
        while self._recent and self._recent[0][0] < now - RATE_S:
            self._recent.popleft()

    # -- calls --------------------------------------------------------------------------
    def stats(self) -> StreamStats:
        """The counts, events/s over the last :data:`RATE_S` and the group's backlog."""
        now = time.monotonic()
        recent = [n for t, n in list(self._recent) if t >= now - RATE_S]
        self._stats.events_per_s = sum(recent) / max(min(RATE_S, now - self._started), 0.1)
        self._stats.versions = self._plan.versions
        try:
            self._stats.pending, self._stats.unread = self.broker.backlog()
        except Exception:  # the broker is down: the counts still tell something
            _log.warning("could not read the backlog", exc_info=True)
        return self._stats

    def pid(self) -> int:
        return os.getpid()

    def stop(self) -> StreamStats:
        """Finish the current batch, end the loop; return the final counts."""
        self._stop.set()
        self._thread.join(timeout=60)
        return self.stats()
