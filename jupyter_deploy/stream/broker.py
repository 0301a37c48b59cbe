"""The broker interface of stream consumers, and its Redis Streams implementation.

A consumer needs five things of a broker: new messages for it, messages another consumer
took and never acknowledged (it crashed), a way to publish a result and acknowledge its
input *together* (so a crash in between neither loses nor duplicates an answer), and a
dead-letter place for messages that can never be scored. Redis Streams gives each one
directly: XREADGROUP, XAUTOCLAIM, XADD + XACK in one MULTI/EXEC, XADD to a second stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Message:
    """One input message: its broker id and its fields (text, as brokers carry them)."""

    id: str
    fields: dict[str, str]


class Broker(Protocol):
    def read(self, count: int, block_ms: int) -> list[Message]:
        """Up to ``count`` new messages for this consumer, waiting up to ``block_ms``."""
        ...

    def claim_stale(self, min_idle_ms: int, count: int) -> list[Message]:
        """Messages delivered to any consumer more than ``min_idle_ms`` ago and not acked."""
        ...

    def answer(self, done: list[tuple[Message, dict[str, str]]]) -> None:
        """Publish each message's result and acknowledge the messages, atomically."""
        ...

    def dead_letter(self, failed: list[tuple[Message, str]]) -> None:
        """Move messages that cannot be scored, with their reason, and acknowledge them."""
        ...


@dataclass(frozen=True)
class RedisStreams:
    """Where a Redis stream consumer reads and writes (typed: it is pickled to the actor)."""

    url: str  # redis://127.0.0.1:6379/0
    input: str
    output: str
    group: str = "jupyter_deploy"
    dead_letter: str = ""  # default: "<input>:dead"

    @property
    def dead_letter_stream(self) -> str:
        return self.dead_letter or f"{self.input}:dead"

    def connect(self, consumer: str) -> RedisBroker:
        return RedisBroker(self, consumer)


class RedisBroker:
    """:class:`Broker` over Redis Streams with one consumer group."""

    def __init__(self, config: RedisStreams, consumer: str) -> None:
        import redis

        self.config, self.consumer = config, consumer
        self.redis = redis.Redis.from_url(config.url, decode_responses=True)
        try:  # the group starts at the stream's beginning: nothing sent before is skipped
            self.redis.xgroup_create(config.input, config.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, count: int, block_ms: int) -> list[Message]:
        c = self.config
        got: Any = self.redis.xreadgroup(c.group, self.consumer, {c.input: ">"}, count, block_ms)
        return [Message(i, f) for _, entries in got or [] for i, f in entries]

    def claim_stale(self, min_idle_ms: int, count: int) -> list[Message]:
        c = self.config
        reply: Any = self.redis.xautoclaim(
            c.input, c.group, self.consumer, min_idle_ms, start_id="0-0", count=count
        )
        # [next start, entries, deleted ids (Redis 7+)]; an entry deleted meanwhile is None
        return [Message(i, f) for i, f in reply[1] if f is not None]

    def answer(self, done: list[tuple[Message, dict[str, str]]]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        for _, fields in done:
            pipe.xadd(self.config.output, dict[Any, Any](fields))
        pipe.xack(self.config.input, self.config.group, *[m.id for m, _ in done])
        pipe.execute()

    def dead_letter(self, failed: list[tuple[Message, str]]) -> None:
        c = self.config
        pipe = self.redis.pipeline(transaction=True)
        for msg, reason in failed:
            fields: dict[Any, Any] = {**msg.fields, "source_id": msg.id, "error": reason}
            pipe.xadd(c.dead_letter_stream, fields)
        pipe.xack(c.input, c.group, *[m.id for m, _ in failed])
        pipe.execute()
