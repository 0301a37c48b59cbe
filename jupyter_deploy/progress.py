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
