"""The replica's compacted warning filters: same action for every warning, fewer filters.

The equivalence is checked with Python's own ``warnings`` machinery (``warn_explicit``),
not a re-implementation of its matching; the cluster test checks a live replica.
"""

from __future__ import annotations

import itertools
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import cloudpickle
import httpx
import numpy as np
import pytest
from conftest import wait_for

from jupyter_deploy.replica.warning_filters import Filter, compacted

cloudpickle.register_pickle_by_value(sys.modules[__name__])
MESSAGES = (
    "numpy.ndarray size changed, may indicate binary incompatibility",
    "the matrix subclass is not the recommended way",
    *("abb", "ABC", "xyz", "other", "ZZ top"),
)
MODULES = ("__main__", "mod_a", "sklearn.ensemble._forest")
TRICKY: list[Filter] = [
    ("ignore", re.compile("a(b)\\1", re.I), Warning, None, 0),  # a group: never merged
    ("ignore", re.compile("abc", re.I), Warning, None, 0),
    ("ignore", re.compile("xyz", re.I), UserWarning, None, 0),  # another category
    ("error", None, RuntimeWarning, None, 7),
    ("error", None, FutureWarning, None, 7),  # a line number: merged with its own only
    ("once", None, UserWarning, re.compile("mod_a"), 0),  # a module: no tuple category
    ("once", None, FutureWarning, re.compile("mod_a"), 0),
    ("always", None, UserWarning, None, 0),
    ("always", None, FutureWarning, None, 0),
    ("default", None, SyntaxWarning, None, 0),
    ("ignore", None, UserWarning, None, 0),  # unreachable: "always" takes UserWarning
    ("module", None, DeprecationWarning, "__main__", 0),
    ("module", None, DeprecationWarning, None, 0),
    ("ignore", None, DeprecationWarning, None, 0),  # unreachable
    ("ignore", None, PendingDeprecationWarning, None, 0),
    ("ignore", re.compile("(?i)other"), Warning, None, 0),  # inline flags: not merged
    ("ignore", re.compile("zz", re.I), Warning, None, 0),
]


def _issues(module: str) -> tuple[tuple[str, int], ...]:
    return ((module, 7), (module, 7), (module, 8), ("other_mod", 7), ("other_mod", 8),
            ("no_registry", 7), ("no_registry", 7))  # fmt: skip


def _outcome(filters: list[Filter], category: type[Warning], text: str, module: str) -> Any:
    """Which issues of one warning the real ``warnings`` module shows: from one line twice,
    another line, another module, and with no registry (every action shows a different
    subset; "error" raises at the first)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.filters[:] = filters  # type: ignore[index]
        warnings._filters_mutated()  # type: ignore[attr-defined]
        warnings.onceregistry.clear()  # type: ignore[attr-defined]
        # With no registry, "once" looks in the process's registry and "module" shows all.
        registries: dict[str, Any] = {module: {}, "other_mod": {}, "no_registry": None}
        try:
            for mod, line in _issues(module):
                warnings.warn_explicit(text, category, f"{mod}.py", line, mod, registries[mod])
        except Warning as err:
            return ("error", len(seen), type(err).__name__)
        return [(w.filename, w.lineno) for w in seen]


def _same_actions(filters: list[Filter]) -> None:
    short = compacted(filters)
    categories = {c for f in filters for c in (f[2] if isinstance(f[2], tuple) else (f[2],))}
    categories |= {UserWarning, RuntimeWarning, FutureWarning, SyntaxWarning, Warning,
                   DeprecationWarning, PendingDeprecationWarning, ResourceWarning}  # fmt: skip
    for category, text, module in itertools.product(categories, MESSAGES, MODULES):
        before = _outcome(filters, category, text, module)
        assert _outcome(short, category, text, module) == before, (category, text, module)


def _stack_filters() -> list[Filter]:
    """The filters of a process that imported what a replica imports."""
    import bentoml  # noqa: F401
    import scipy.special  # noqa: F401
    from ray import serve  # noqa: F401

    import jupyter_deploy.replica.app  # noqa: F401

    return list(warnings.filters)


def test_every_warning_gets_the_same_action_from_fewer_filters() -> None:
    stack = _stack_filters()
    for filters in (TRICKY, stack):
        short = compacted(filters)
        assert len(short) < len(filters)
        assert compacted(short) == short  # a fixed point: compacting again changes nothing
        _same_actions(filters)


def test_scikit_learn_re_adds_the_compacted_filters_per_tree() -> None:
    """Its ``_FuncWrapper`` re-adds every filter with simplefilter or filterwarnings."""
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    x = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, x["b"] > 0)
    short = compacted(_stack_filters() + TRICKY)
    with warnings.catch_warnings(record=True) as seen:
        warnings.filters[:] = short  # type: ignore[index]
        warnings._filters_mutated()  # type: ignore[attr-defined]
        assert forest.predict(x).shape == (20,)
        assert list(warnings.filters) == short
    assert [str(w.message) for w in seen] == []


class WarnsInReplica:
    """Predicts in the kernel; in a replica, warns and answers 1 if its process's filters
    are compacted already (compacting them again changes nothing), else 0."""

    def __init__(self) -> None:
        self.pid = os.getpid()

    def predict(self, x: Any) -> Any:
        if os.getpid() == self.pid:
            return np.zeros(len(x), dtype=int)
        from jupyter_deploy.replica.warning_filters import compacted

        warnings.warn("jd-test deprecated in the replica", DeprecationWarning, stacklevel=1)
        warnings.warn("jd-test warning from the model", UserWarning, stacklevel=1)
        fixed = compacted(list(warnings.filters)) == list(warnings.filters)
        return np.full(len(x), int(fixed))


def _stderr_log(app: str) -> Path:
    """The log file a replica of ``app`` writes its stderr (and so its warnings) to."""
    import psutil

    prefix = f"ray::ServeReplica:{app}:"
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if cmdline and cmdline[0].startswith(prefix):
            return Path(os.readlink(f"/proc/{proc.pid}/fd/2"))
    raise AssertionError(f"no replica process of {app}")


@pytest.mark.cluster
def test_a_replica_serves_with_compacted_filters_and_logs_model_warnings(
    cluster: Any, iris: tuple[Any, Any]
) -> None:
    import jupyter_deploy as jd

    x, _ = iris
    dep = jd.deploy(WarnsInReplica(), name="warn-filters", sample=x, progress=False)
    try:
        body, auth = {"instances": x.head(2).to_dict("records")}, f"Bearer {dep.token}"
        for _ in range(2):
            r = httpx.post(f"{dep.url}/predict", json=body, headers={"Authorization": auth},
                           timeout=30)  # fmt: skip
            assert r.status_code == 200, r.text
            assert r.json()["predictions"] == [1, 1]
        log = _stderr_log("warn-filters")
        text = wait_for(lambda: (t := log.read_text(errors="replace"))
                        and "jd-test warning from the model" in t and t,
                        30, "the model's warning in the replica's log")  # fmt: skip
        # As with Python's default filters: a UserWarning once per place, deprecations hidden.
        assert text.count("UserWarning: jd-test warning from the model") == 1
        assert "DeprecationWarning: jd-test deprecated" not in text
    finally:
        jd.undeploy("warn-filters")
