"""The replica's warning filters, made as few as they can be with the same effect.

Why: scikit-learn runs every tree of a forest through ``sklearn.utils.parallel``'s
``_FuncWrapper``, which resets the process's warning filters and adds each one back, once
per tree, so a 200-tree ``predict`` costs about a millisecond more per filter on this
machine (docs/benchmarks.md). A replica process holds the filters of Python, NumPy,
SciPy, Ray, urllib3 and requests (18 in one, against 11 in a FastAPI worker serving the
same model).

:func:`compacted` rewrites a filter list into a shorter one that gives every warning the
same action: it drops filters no warning can reach (an earlier filter with no message,
module or line number already takes every category they name) and merges neighbours with
the same action (categories into one tuple, as ``issubclass`` and the C ``warnings``
module accept; message patterns into one alternation). Nothing is dropped or reordered
that could decide a warning, so a model's warnings reach the replica's log exactly as
before. :func:`compact` applies it in place each time a version is loaded
(:meth:`~jupyter_deploy.replica.loaded.LoadedVersion.load`: in replicas, batch scorers and
stream consumers alike), when the process's imports and the model's are done; in place,
so a ``catch_warnings`` running in another thread restores the same, shortened list.
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any

_log = logging.getLogger("ray.serve")

Filter = tuple[Any, ...]  # (action, message, category, module, lineno), as in warnings.filters


def _categories(category: Any) -> tuple[type, ...]:
    return category if isinstance(category, tuple) else (category,)


def _unreachable(earlier: Filter, later: Filter) -> bool:
    """Whether every warning ``later`` could match is already decided by ``earlier``."""
    if earlier == later:
        return True
    _, message, category, module, lineno = earlier
    return (
        message is None
        and module is None
        and lineno == 0
        and all(issubclass(c, category) for c in _categories(later[2]))
    )


def _merged(first: Filter, second: Filter) -> Filter | None:
    """One filter that matches what ``first`` or ``second`` matches (same action), or None."""
    action, msg1, cat1, mod1, line1 = first
    _, msg2, cat2, mod2, line2 = second
    if action != second[0] or line1 != line2:
        return None
    if msg1 is None and msg2 is None and mod1 is None and mod2 is None:
        # A tuple category only where scikit-learn re-adds it with simplefilter (no message,
        # no module): filterwarnings asserts a single class.
        return (action, None, _categories(cat1) + _categories(cat2), None, line1)
    if (
        isinstance(msg1, re.Pattern)
        and isinstance(msg2, re.Pattern)
        and msg1.flags == msg2.flags
        and msg1.groups == msg2.groups == 0  # no group numbers to shift
        and isinstance(cat1, type)
        and cat1 is cat2
        and mod1 == mod2
    ):
        try:
            both = re.compile(f"(?:{msg1.pattern})|(?:{msg2.pattern})", msg1.flags)
        except re.error:  # e.g. inline global flags, valid only at the start
            return None
        return (action, both, cat1, mod1, line1)
    return None


def compacted(filters: list[Filter]) -> list[Filter]:
    """A shorter list of warning filters that gives every warning the same action."""
    out: list[Filter] = []
    for item in filters:
        if any(_unreachable(earlier, item) for earlier in out):
            continue
        joined = _merged(out[-1], item) if out else None
        if joined is not None:
            out[-1] = joined
        else:
            out.append(item)
    return out


_length = -1  # len(warnings.filters) after the last compact()


def compact() -> None:
    """Shorten ``warnings.filters`` in place (one slice assignment: atomic under the GIL)."""
    global _length
    before = len(warnings.filters)
    warnings.filters[:] = compacted(list(warnings.filters))  # type: ignore[index]
    mutated = getattr(warnings, "_filters_mutated", None)  # what filterwarnings() calls
    if mutated is not None:
        mutated()
    _length = len(warnings.filters)
    if _length != before:
        _log.debug("warning filters: %d, compacted from %d", len(warnings.filters), before)


def keep_compact() -> None:
    """Compact again if the list changed length since :func:`compact` (a module imported
    later added filters, or a ``catch_warnings`` that was open in another thread during the
    load restored the list it saved). One ``len`` per model batch otherwise."""
    if len(warnings.filters) != _length:
        compact()
