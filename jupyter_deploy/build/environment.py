"""Infer the Python packages a captured model needs, pinned to the kernel's versions.

No resolver runs here (it would reach the network and cost seconds on every deploy):
the kernel's own installed versions are the truth the model was trained with.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from importlib import metadata

# What the Bento's runtime itself imports, whatever the model is.
RUNTIME_DISTRIBUTIONS = ("numpy", "pandas", "cloudpickle", "orjson")
# Distributions whose version must match exactly for an sklearn pickle to load.
_COMPANIONS = {"scikit-learn": ("scipy", "joblib", "threadpoolctl")}
_SKIP_MODULES = {"__main__", "builtins", "jupyter_deploy", "copyreg", "cloudpickle"}


@lru_cache(maxsize=1)
def _module_to_distributions() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


def distributions_for(modules: set[str]) -> set[str]:
    """Distributions that provide the given top-level modules (stdlib left out)."""
    mapping = _module_to_distributions()
    dists: set[str] = set()
    for mod in modules:
        if mod in _SKIP_MODULES or mod in sys.stdlib_module_names:
            continue
        dists.update(mapping.get(mod, []))
    return dists


def pinned_requirements(modules: set[str]) -> list[str]:
    """``name==version`` lines for the model's packages plus the runtime's, sorted."""
    dists = distributions_for(modules) | set(RUNTIME_DISTRIBUTIONS)
    for dist, companions in _COMPANIONS.items():
        if dist in dists:
            dists.update(companions)
    pins = []
    for dist in sorted(dists, key=str.lower):
        try:
            pins.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue  # a module without installed metadata (vendored, editable): skip
    return pins


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"
