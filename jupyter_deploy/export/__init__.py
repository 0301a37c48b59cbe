"""Other runners of the same Bento: an ONNX graph with its parity report, the archive.

Runs in the kernel or the CLI (the driver side), from the local BentoML store. May import
build, _bento and monitoring; never client (the handle calls into this room).
"""

from __future__ import annotations

from .formats import FORMATS, export

__all__ = ["FORMATS", "export"]
