"""Progress feedback for long steps: a live line in a notebook, plain lines elsewhere."""

from __future__ import annotations

import contextlib
import html
import sys
import time
from collections.abc import Iterator
from typing import Any


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


class Progress:
    """Steps of one operation (capture, package, deploy, ready) with their durations."""

    def __init__(self, title: str, enabled: bool = True) -> None:
        self.title = title
        self.enabled = enabled
        self.done: list[tuple[str, float]] = []
        self.current = ""
        self.detail = ""
        self._handle: Any = None
        self._notebook = enabled and _in_notebook()

    @contextlib.contextmanager
    def step(self, label: str) -> Iterator[None]:
        self.current, self.detail = label, ""
        started = time.perf_counter()
        self._render()
        yield
        self.done.append((label, time.perf_counter() - started))
        self.current = ""
        self._render()

    def note(self, detail: str) -> None:
        """A sub-status of the running step (e.g. the rollout state)."""
        self.detail = detail
        self._render()

    def summary(self) -> str:
        return " · ".join(f"{label} {secs:.1f}s" for label, secs in self.done)

    def _render(self) -> None:
        if not self.enabled:
            return
        running = f"{self.current}…" + (f" ({self.detail})" if self.detail else "")
        if not self._notebook:
            if self.current:
                print(f"[jupyter_deploy] {self.title}: {running}", file=sys.stderr, flush=True)
            return
        from IPython.display import HTML, display

        parts = [f"✔ {html.escape(label)} {secs:.1f}s" for label, secs in self.done]
        if self.current:
            parts.append(f"⏳ {html.escape(running)}")
        body = HTML(
            f"<div style='font-family:monospace'><b>{html.escape(self.title)}</b>: "
            + " &nbsp; ".join(parts)
            + "</div>"
        )
        if self._handle is None:
            self._handle = display(body, display_id=True)
        else:
            self._handle.update(body)


class RowProgress:
    """Rows done of a total and rows/s: a bar in a notebook, a line on stderr elsewhere.

    Redrawn at most every ``every_s`` seconds (every 5 s when stderr is not a terminal,
    so CI logs get a few lines, not thousands).
    """

    def __init__(self, title: str, total: int | None, enabled: bool = True) -> None:
        self.title, self.total, self.enabled = title, total, enabled
        self.done = 0
        self.started = time.perf_counter()
        self._drawn = 0.0
        self._shown = -1  # rows at the last redraw: close() does not repeat the last line
        self._handle: Any = None
        self._notebook = enabled and _in_notebook()
        self._tty = sys.stderr.isatty()
        self.every_s = 0.5 if self._notebook or self._tty else 5.0

    def advance(self, rows: int) -> None:
        self.done += rows
        if time.perf_counter() - self._drawn >= self.every_s:
            self._render(final=False)

    def close(self) -> None:
        if self._shown != self.done or self._tty:
            self._render(final=True)

    def _text(self) -> str:
        secs = time.perf_counter() - self.started
        rate = self.done / secs if secs > 0 else 0.0
        total = f" / {self.total:,}" if self.total else ""
        return f"{self.title}: {self.done:,}{total} rows, {rate:,.0f} rows/s, {secs:.1f} s"

    def _render(self, final: bool) -> None:
        if not self.enabled:
            return
        self._drawn, self._shown = time.perf_counter(), self.done
        if not self._notebook:
            end = "\n" if final or not self._tty else ""
            print(f"\r[jupyter_deploy] {self._text()}", end=end, file=sys.stderr, flush=True)
            return
        from IPython.display import HTML, display

        bar = f"<progress value='{self.done}' max='{self.total}'></progress> " if self.total else ""
        body = HTML(f"<div style='font-family:monospace'>{bar}{html.escape(self._text())}</div>")
        if self._handle is None:
            self._handle = display(body, display_id=True)
        else:
            self._handle.update(body)
