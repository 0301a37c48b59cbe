"""What the aggregator remembers of each request for its feedback, saved a piece at a time.

Feedback (a true label) may come hours after its prediction, and after a restart, so the
predictions of the last :data:`REMEMBER` requests (and their rows' segment values) are
kept by request id and saved with the monitoring counters. Saved whole every few
seconds, they cost more than the rest of monitoring: 200,000 ids made a 9 MB pickle,
0.2 s of the aggregator's CPU every 5 s, and as many bytes rewritten in the state
database. So they are kept in chunks: new ids go to the open chunk; each save closes it
(pickled once, stored as a row of its own, never written again), and the oldest chunk is
dropped, in memory and in the store, once the newer ones hold :data:`REMEMBER` ids.
"""

from __future__ import annotations

import pickle
from collections import deque
from dataclasses import dataclass, field
from typing import Any

REMEMBER = 200_000  # requests kept for feedback, per deployment (oldest forgotten)
CHUNK = 50_000  # most ids an open chunk takes before it is closed (unsaved) anyway

# request id -> (version, predicted rows, the rows' segment values or None)
Entry = tuple[int, list[Any], list[list[str]] | None]


@dataclass
class Chunk:
    number: int
    entries: dict[str, Entry] = field(default_factory=dict)
    saved: bool = False


class Memory:
    """One deployment's remembered requests: closed chunks, then the open one (newest)."""

    def __init__(self, keep: int = REMEMBER, first: int = 0) -> None:
        self.keep = keep
        self._chunks: deque[Chunk] = deque([Chunk(first)])

    def add(self, request_id: str, entry: Entry) -> None:
        self._chunks[-1].entries[request_id] = entry
        if len(self._chunks[-1].entries) >= CHUNK:
            self._close()

    def get(self, request_id: str) -> Entry | None:
        for chunk in reversed(self._chunks):
            entry = chunk.entries.get(request_id)
            if entry is not None:
                return entry
        return None

    def __len__(self) -> int:
        return sum(len(c.entries) for c in self._chunks)  # a few chunks

    def _close(self) -> None:
        """Start a new open chunk; forget the oldest ones the newer ones make unneeded."""
        self._chunks.append(Chunk(self._chunks[-1].number + 1))
        while len(self._chunks) > 1 and len(self) - len(self._chunks[0].entries) >= self.keep:
            self._chunks.popleft()

    def unsaved(self) -> tuple[list[tuple[int, bytes]], int]:
        """The chunks not saved yet (the open one closed first), pickled, and the number of
        the oldest chunk kept: the store drops the ones before it. Marks them saved."""
        if self._chunks[-1].entries:
            self._close()
        closed = list(self._chunks)[:-1]
        new = [(c.number, pickle.dumps(c.entries)) for c in closed if not c.saved]
        for chunk in closed:
            chunk.saved = True
        return new, self._chunks[0].number

    def load(self, chunks: list[tuple[int, bytes]]) -> None:
        """Take saved chunks back after a restart (before anything new is added)."""
        open_chunk = self._chunks.pop()
        for number, blob in sorted(chunks):
            self._chunks.append(Chunk(number, pickle.loads(blob), saved=True))
        if self._chunks and self._chunks[-1].number >= open_chunk.number:
            open_chunk.number = self._chunks[-1].number + 1
        self._chunks.append(open_chunk)

    # The chunks are saved apart (unsaved()) and loaded back (load()): not in the counters.
    def __getstate__(self) -> dict[str, Any]:
        return {"keep": self.keep, "first": self._chunks[-1].number}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["keep"], state["first"])  # type: ignore[misc]
