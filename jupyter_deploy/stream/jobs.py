"""Running streams as the desired state has them: start, restore, status and stop.

A stream is a row of the store (:class:`~jupyter_deploy.control.records.StreamRecord`)
and ``consumers`` detached actors named after it, so any process (a kernel, the CLI, the
monitor) finds them by name, and they outlive the kernel that started them. After a
cluster restart the actors are gone and the rows are not: :func:`restore` starts them
again under the same consumer names in the same group, so each takes back the messages
it held unacknowledged and nothing is lost or answered twice. Starting is idempotent
(``get_if_exists``): restoring a stream whose consumers run changes nothing.

The broker's password is not in the row: it is read from the environment variable the
row names, by the process that starts or restores the consumers, and handed to them.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import _ray
from ..control.records import StreamRecord
from ..errors import StreamSpecError
from .consumer import StreamConsumer, StreamStats

_log = logging.getLogger(__name__)
# A consumer whose process dies (killed, out of memory) is started again by Ray under the
# same name: it takes back its own pending messages first. Bounded, so one that cannot
# start (its broker is gone) does not restart forever.
RESOURCES = {"num_cpus": 0.5, "max_concurrency": 3, "max_restarts": 5}


@dataclass(frozen=True)
class StreamStatus:
    """One stream now: its consumers' summed counts and the group's backlog."""

    name: str
    input: str
    output: str
    group: str
    consumers: int  # running
    events_per_s: float
    lag: int  # pending (delivered, not acknowledged) + unread
    processed: int
    failed: int
    dead_lettered: int
    versions: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _actor_name(rec: StreamRecord, index: int) -> str:
    return f"jd-stream:{rec.name}:{rec.key}:{index}"


def password(rec: StreamRecord) -> str | None:
    """The broker's password from ``rec.password_env`` (one line if it is not set)."""
    if not rec.password_env:
        return None
    value = os.environ.get(rec.password_env)
    if not value:
        where = f"the environment variable {rec.password_env}"
        raise StreamSpecError(f"Stream {rec.input} of '{rec.name}' needs the broker password "
                              f"in {where}; set it in this process's environment.")  # fmt: skip
    return value


@dataclass
class StreamJob:
    """A handle of one running stream: ``status()``, ``stats()``, ``stop()``."""

    record: StreamRecord
    actors: list[Any] = field(repr=False)

    @property
    def key(self) -> str:
        return self.record.key

    def stats(self) -> list[StreamStats]:
        """Each running consumer's counts (a consumer that died is left out)."""
        import ray

        refs = [a.stats.remote() for a in self.actors]
        out = []
        for ref in refs:
            try:
                out.append(ray.get(ref, timeout=30))
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                continue
        return out

    def status(self) -> StreamStatus:
        """Consumers, events/s, lag (pending + unread), processed, failed, dead-lettered."""
        stats, r = self.stats(), self.record
        backlog = max((s.pending + s.unread for s in stats), default=0)
        return StreamStatus(r.name, r.input, r.output, r.group,
                            sum(s.running for s in stats), sum(s.events_per_s for s in stats),
                            backlog, sum(s.scored for s in stats), sum(s.failed for s in stats),
                            sum(s.dead_lettered for s in stats),
                            tuple(sorted({v for s in stats for v in s.versions})))  # fmt: skip

    def stop(self) -> list[StreamStats]:
        """Let each consumer finish its batch, end it, and forget the stream (its row)."""
        import ray

        final, refs = [], [a.stop.remote() for a in self.actors]  # all finish at once
        for actor, ref in zip(self.actors, refs, strict=True):
            with contextlib.suppress(ray.exceptions.RayActorError):  # died already
                final.append(ray.get(ref, timeout=90))
            ray.kill(actor)
        _ray.call(_registry().drop_stream, self.record.name, self.record.key)
        return final

    def __repr__(self) -> str:
        r = self.record
        return f"<StreamJob {r.name}: {r.input} -> {r.output} ({len(self.actors)} consumers)>"


def _registry() -> Any:
    from ..control.registry import handle

    return handle()


def _spawn(rec: StreamRecord, secret: str | None) -> StreamJob:
    import ray

    remote = ray.remote(StreamConsumer)
    actors = [
        remote.options(name=_actor_name(rec, i), namespace=_ray.NAMESPACE, lifetime="detached",
                       get_if_exists=True, **RESOURCES).remote(rec, i, secret)
        for i in range(rec.consumers)
    ]  # fmt: skip
    return StreamJob(rec, actors)


def start(rec: StreamRecord) -> StreamJob:
    """Record ``rec`` as desired state, then start its consumers (or find them running)."""
    from ..errors import DeploymentNotFoundError

    secret = password(rec)
    if any(r.key == rec.key for r in _ray.call(_registry().streams, rec.name)):
        raise StreamSpecError(f"'{rec.name}' already consumes {rec.input} in group {rec.group}; "
                              "stop that stream first to change it.")  # fmt: skip
    if not _ray.call(_registry().put_stream, rec):
        raise DeploymentNotFoundError(f"No deployment named '{rec.name}' in the cluster.")
    return _spawn(rec, secret)


def jobs(name: str | None = None) -> list[StreamJob]:
    """The recorded streams (of deployment ``name``), as handles of their consumers."""
    import ray

    out = []
    for rec in _ray.call(_registry().streams, name):
        actors = []
        for i in range(rec.consumers):
            try:
                actors.append(ray.get_actor(_actor_name(rec, i), namespace=_ray.NAMESPACE))
            except ValueError:
                continue  # not running (yet): restore() starts it
        out.append(StreamJob(rec, actors))
    return out


def restore() -> list[str]:
    """Start the consumers of every recorded stream that are not running; one line per
    stream that could not be (its password is not in this process's environment)."""
    problems = []
    for job in jobs():
        if len(job.actors) == job.record.consumers:
            continue
        try:
            _spawn(job.record, password(job.record))
        except StreamSpecError as exc:
            _log.warning("%s", exc)
            problems.append(str(exc))
    return problems


def stop_all(name: str) -> int:
    """Stop every stream of deployment ``name`` (it is being deleted); how many."""
    found = jobs(name)
    for job in found:
        job.stop()
    return len(found)
