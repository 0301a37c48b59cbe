"""``jupyter-deploy stream start|status|stop NAME``: a deployment's stream consumers.

A stream is desired state in the cluster: ``start`` records it and starts its consumers,
which keep running after the command exits and come back after a cluster restart;
``stop`` ends them and forgets it.
"""

from __future__ import annotations

import argparse
from typing import Any

COLUMNS = ("input", "output", "group", "consumers", "events_per_s", "lag", "processed",
           "failed", "dead_lettered", "versions")  # fmt: skip


def _table(rows: list[dict[str, Any]]) -> str:
    """A plain text table of the streams' status, one line each."""
    cells = [[str(c) for c in COLUMNS]]
    for row in rows:
        cells.append([f"{row[c]:,.1f}" if c == "events_per_s" else
                      ",".join(f"v{v}" for v in row[c]) if c == "versions" else str(row[c])
                      for c in COLUMNS])  # fmt: skip
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in cells)  # fmt: skip


def _stream(args: argparse.Namespace) -> Any:
    from .client import api
    from .errors import InvalidSpecError

    dep = api.get(args.name, address=args.address)
    if args.action == "start":
        if not (args.url and args.input and args.output):
            raise InvalidSpecError("`stream start NAME URL --input S --output S` needs all three.")
        job = dep.stream(args.url, args.input, args.output, group=args.group,
                         consumers=args.consumers, batch_size=args.batch_size,
                         version=args.version, password_env=args.password_env or "")  # fmt: skip
        r = job.record
        follows = f"v{r.version}" if r.version is not None else "the live version and split"
        return (f"Started {r.consumers} consumer(s) of '{r.name}': {r.input} -> {r.output} "
                f"(group {r.group}), scoring with {follows}.")  # fmt: skip
    jobs = dep.streams()
    if args.input:
        jobs = [j for j in jobs if j.record.input == args.input]
    if args.action == "stop":
        for job in jobs:
            job.stop()
        what = ", ".join(j.record.input for j in jobs)
        return f"Stopped {len(jobs)} stream(s) of '{args.name}'" + (f": {what}." if jobs else ".")
    rows = [j.status().to_dict() for j in jobs]
    if args.json:
        return rows
    return _table(rows) if rows else f"'{args.name}' consumes no stream."


def add_commands(sub: Any) -> None:
    """Register ``stream`` on ``jupyter-deploy``'s subparsers."""
    s = sub.add_parser("stream", help="Score a Redis stream with a deployment: start, status, "
                       "stop.")  # fmt: skip
    s.add_argument("action", choices=["start", "status", "stop"])
    s.add_argument("name")
    s.add_argument("url", nargs="?", help="start: redis://HOST:PORT/DB (no password in it)")
    s.add_argument("--input", help="the stream to read (start; status/stop: only this one)")
    s.add_argument("--output", help="start: the stream answers are added to")
    s.add_argument("--group", default="jupyter_deploy",
                   help="consumer group (default: jupyter_deploy)")  # fmt: skip
    s.add_argument("--consumers", type=int, default=1, help="consumer actors (default 1)")
    s.add_argument("--batch-size", type=int, default=256, help="messages per read (default 256)")
    s.add_argument("--version", type=int, help="score with this version (default: follow live)")
    s.add_argument("--password-env", help="environment variable holding the broker password")
    s.set_defaults(func=_stream)
