"""The broker interface of stream consumers, and its Redis Streams implementation.

A consumer needs five things of a broker: new messages for it, messages another consumer
took and never acknowledged (it crashed), a way to publish a result and acknowledge its
input *together* (so a crash in between neither loses nor duplicates an answer), and a
dead-letter place for messages that can never be scored. Redis Streams gives each one
directly: XREADGROUP, XAUTOCLAIM, XADD + XACK in one MULTI/EXEC, XADD to a second stream.

A broker's password never travels inside its URL (which the store keeps): :func:`split_url`
takes it out, and the consumer gets it as a separate argument, held only in its memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit


def split_url(url: str) -> tuple[str, str | None]:
    """``url`` without its password (the user name stays), and the password (or None)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = (f"{parts.username}@" if parts.username else "") + host
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=netloc)), parts.password


@dataclass(frozen=True)
class Message:
    """One input message: its broker id and its fields (text, as brokers carry them)."""

    id: str
    fields: dict[str, str]


class Broker(Protocol):
    def own_pending(self, count: int) -> list[Message]:
        """Messages this consumer (by name) took before it restarted and never acked."""
        ...

    def backlog(self) -> tuple[int, int]:
        """(pending: delivered, not acknowledged; unread: not delivered yet) of the group."""
        ...

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

    def connect(self, consumer: str, password: str | None = None) -> RedisBroker:
        return RedisBroker(self, consumer, password)


class RedisBroker:
    """:class:`Broker` over Redis Streams with one consumer group."""

    def __init__(self, config: RedisStreams, consumer: str, password: str | None = None) -> None:
        import redis

        self.config, self.consumer = config, consumer
        extra = {"password": password} if password else {}
        self.redis = redis.Redis.from_url(config.url, decode_responses=True, **extra)
        try:  # the group starts at the stream's beginning: nothing sent before is skipped
            self.redis.xgroup_create(config.input, config.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, count: int, block_ms: int) -> list[Message]:
        c = self.config
        got: Any = self.redis.xreadgroup(c.group, self.consumer, {c.input: ">"}, count, block_ms)
        return [Message(i, f) for _, entries in got or [] for i, f in entries]

    def own_pending(self, count: int) -> list[Message]:
        c = self.config
        got: Any = self.redis.xreadgroup(c.group, self.consumer, {c.input: "0"}, count)
        return [Message(i, f) for _, entries in got or [] for i, f in entries if f]

    def backlog(self) -> tuple[int, int]:
        groups: Any = self.redis.xinfo_groups(self.config.input)
        mine = next((g for g in groups if g["name"] == self.config.group), None)
        if mine is None:
            return 0, 0
        # "lag" (Redis 7+) is None when Redis cannot tell (entries deleted): count it then
        lag = mine.get("lag")
        if lag is None:
            last = mine["last-delivered-id"]
            lag = len(self.redis.xrange(self.config.input, f"({last}", "+") or [])
        return int(mine["pending"]), int(lag)

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
