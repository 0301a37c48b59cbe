"""Stream consumers: Ray actors that score a broker's messages with a version's Bento.

Each consumer is an actor holding one :class:`~jupyter_deploy.batch.scorer.Scorer` (the
Bento loaded as a replica loads it, so a message is accepted exactly when the endpoint
would accept its record) and one broker connection. Its loop: take over messages a dead
consumer left unacknowledged (after ``claim_idle_ms``), read new ones, score them as one
batch, publish each result together with its acknowledgement, and move the messages the
runtime refuses to the dead-letter stream with their reason. Delivery is at least once:
a consumer that dies before the answer is published leaves its messages to be claimed.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from ..batch.records import BatchTarget
from ..batch.scorer import Scorer
from .broker import Message, RedisStreams

BLOCK_MS = 500  # how long a read waits: also how soon stop() is noticed
PASSTHROUGH = "id"  # a message field copied to its answer, not given to the model


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


@dataclass
class StreamStats:
    """What one consumer did since it started."""

    consumer: str
    read: int = 0
    scored: int = 0
    failed: int = 0
    claimed: int = 0  # taken over from consumers that never acknowledged them
    running: bool = True


class StreamConsumer:
    """Actor body (threaded: ``stop`` and ``stats`` run while ``run`` loops)."""

    def __init__(self, target: BatchTarget, config: RedisStreams, consumer: str, method: str,
                 batch: int, claim_idle_ms: int) -> None:  # fmt: skip
        self.scorer = Scorer(target, method, [], batch)
        self.broker = config.connect(consumer)
        self.version, self.batch, self.claim_idle_ms = target.version, batch, claim_idle_ms
        self._stats = StreamStats(consumer)
        self._stop = threading.Event()

    def run(self) -> StreamStats:
        """Consume until :meth:`stop`; return the final counts."""
        while not self._stop.is_set():
            msgs = self.broker.claim_stale(self.claim_idle_ms, self.batch)
            self._stats.claimed += len(msgs)
            if len(msgs) < self.batch:
                msgs += self.broker.read(self.batch - len(msgs), BLOCK_MS)
            if msgs:
                self.handle(msgs)
        self._stats.running = False
        return self._stats

    def handle(self, msgs: list[Message]) -> None:
        self._stats.read += len(msgs)
        predictions, errors = self.scorer.score_rows([record(m) for m in msgs])
        good = [m for i, m in enumerate(msgs) if i not in errors]
        done = []
        for msg, value in zip(good, [] if predictions is None else predictions.tolist(),
                              strict=True):  # fmt: skip
            answer = {"source_id": msg.id, "prediction": json.dumps(value),
                      "version": str(self.version)}  # fmt: skip
            if PASSTHROUGH in msg.fields:
                answer[PASSTHROUGH] = msg.fields[PASSTHROUGH]
            done.append((msg, answer))
        if done:
            self.broker.answer(done)
        if errors:
            self.broker.dead_letter([(msgs[i], reason) for i, reason in errors.items()])
        self._stats.scored += len(done)
        self._stats.failed += len(errors)

    def stop(self) -> None:
        self._stop.set()

    def stats(self) -> StreamStats:
        return self._stats


@dataclass
class StreamJob:
    """The kernel's handle of running consumers: counts, and stop."""

    name: str
    config: RedisStreams
    actors: list[Any] = field(repr=False)
    runs: list[Any] = field(repr=False)

    def stats(self) -> list[StreamStats]:
        import ray

        return list(ray.get([a.stats.remote() for a in self.actors]))

    def stop(self) -> list[StreamStats]:
        """Let each consumer finish its current batch, then end it; return the counts."""
        import ray

        ray.get([a.stop.remote() for a in self.actors])
        final = list(ray.get(self.runs))
        for actor in self.actors:
            ray.kill(actor)
        return final


def start(
    target: BatchTarget,
    config: RedisStreams,
    *,
    consumers: int = 1,
    method: str = "predict",
    batch: int = 256,
    claim_idle_ms: int = 30_000,
) -> StreamJob:
    """Start ``consumers`` actors consuming ``config.input``; return their handle.

    The actors live as long as the driver that started them (a notebook's consumers end
    with its kernel); their consumer names are ``<deployment>-<n>``, so a restarted job
    claims what the previous one left unacknowledged.
    """
    import ray

    from ..errors import BatchSpecError

    if method not in target.methods:
        raise BatchSpecError(f"{target.name} v{target.version} has no {method}")
    remote = ray.remote(StreamConsumer).options(max_concurrency=3, num_cpus=0.5)
    actors: list[Any] = [
        remote.remote(target, config, f"{target.name}-{i}", method, batch, claim_idle_ms)
        for i in range(consumers)
    ]
    runs = [a.run.remote() for a in actors]
    return StreamJob(target.name, config, actors, runs)
