"""The two inputs of a quality gate: the candidate model and the holdout data.

A candidate comes from a training script (run, then its ``model`` variable is taken), a
training notebook (its code cells run in one namespace), a pickle or joblib file, or a
tag in the BentoML store (a Bento jupyter_deploy built, or its model). :func:`check_source`
and :func:`check_data` only look (file exists, tag known, header has the target), so bad
parameters fail before anything is trained, built or deployed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ParameterError

SCRIPT, NOTEBOOK, PICKLE, BENTO, MODEL = "script", "notebook", "pickle", "bento", "model"
_SUFFIX_KINDS = {".py": SCRIPT, ".ipynb": NOTEBOOK, ".pkl": PICKLE, ".pickle": PICKLE,
                 ".joblib": PICKLE}  # fmt: skip


@dataclass
class Candidate:
    """A model to validate: the object, where it came from and how it was loaded."""

    model: Any
    source: str
    kind: str

    def __repr__(self) -> str:
        cls = type(self.model)
        return f"candidate {cls.__module__}.{cls.__qualname__} from {self.kind} {self.source}"


@dataclass
class Holdout:
    """Validation rows never seen in training: features ``x`` and the true ``y``."""

    x: Any
    y: Any
    path: str
    target: str

    def __repr__(self) -> str:
        return (
            f"holdout {self.path}: {len(self.x)} rows, {self.x.shape[1]} features, "
            f"target '{self.target}'"
        )


def _store_kind(tag: str) -> str | None:
    """BENTO or MODEL if ``tag`` names one in the BentoML store, else None."""
    import bentoml
    from bentoml.exceptions import BentoMLException

    for kind, getter in ((BENTO, bentoml.bentos.get), (MODEL, bentoml.models.get)):
        try:
            getter(tag)
            return kind
        except (BentoMLException, ValueError):  # NotFound, or not a valid tag at all
            continue
    return None


def check_source(source: str) -> str:
    """The kind of ``source``; raise :class:`ParameterError` if it names nothing loadable."""
    if not isinstance(source, str) or not source.strip():
        raise ParameterError("model is empty: give a .py, .ipynb, .pkl or .joblib file, "
                             "or a Bento tag.")  # fmt: skip
    kind = _SUFFIX_KINDS.get(Path(source).suffix.lower())
    if kind is not None:
        if not Path(source).is_file():
            raise ParameterError(f"model file {source} does not exist (cwd {os.getcwd()}).")
        return kind
    found = _store_kind(source)
    if found is None:
        raise ParameterError(
            f"unknown model {source!r}: not a .py/.ipynb/.pkl/.joblib file, nor a Bento or "
            "model tag in the BentoML store (bentoml list)."
        )
    return found


def check_data(path: str, target: str) -> list[str]:
    """The feature columns of the CSV at ``path``; raise if it is missing or lacks ``target``."""
    import pandas as pd

    if not isinstance(path, str) or not Path(path).is_file():
        raise ParameterError(f"data file {path!r} does not exist (cwd {os.getcwd()}).")
    try:
        columns = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParameterError(f"data file {path} is not a readable CSV: {exc}") from None
    if target not in columns:
        raise ParameterError(f"data file {path} has no target column {target!r}; "
                             f"columns: {', '.join(columns[:20])}.")  # fmt: skip
    features = [c for c in columns if c != target]
    if not features:
        raise ParameterError(f"data file {path} has only the target column {target!r}.")
    return features


def load_holdout(path: str, target: str) -> Holdout:
    """Read the holdout CSV: every column but ``target`` is a feature."""
    import pandas as pd

    check_data(path, target)
    frame = pd.read_csv(path)
    if frame.empty:
        raise ParameterError(f"data file {path} has no rows.")
    return Holdout(frame.drop(columns=[target]), frame[target], path, target)


def _run_script(path: str) -> dict[str, Any]:
    import runpy

    # A module name that is not importable: cloudpickle then ships the script's own
    # classes and functions by value, as it does for a notebook's.
    return runpy.run_path(path, run_name="__jd_training__")


def _run_notebook(path: str) -> dict[str, Any]:
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    nb = nbformat.read(path, as_version=4)
    namespace: dict[str, Any] = {"__name__": "__jd_training__"}
    try:  # magics in the training notebook need a shell; papermill's kernel has one
        from IPython import get_ipython

        namespace["get_ipython"] = get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        pass
    transform = TransformerManager().transform_cell
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        code = compile(transform(cell.source), f"{path}[cell {index}]", "exec")
        exec(code, namespace)  # the user's own training notebook, run as %run would
    return namespace


def _load_pickle(path: str) -> Any:
    import joblib

    return joblib.load(path)  # reads plain pickles too


def _load_from_store(tag: str, kind: str) -> Any:
    import bentoml

    from .._bento.runtime import ModelRuntime

    if kind == BENTO:
        tag = str(bentoml.bentos.get(tag).info.models[0].tag)
    return ModelRuntime.from_dir(bentoml.models.get(tag).path, runtime="python").model


def load_candidate(source: str, variable: str = "model") -> Candidate:
    """Load the candidate model named by ``source``.

    Parameters
    ----------
    source
        A training script (``.py``) or notebook (``.ipynb``) that leaves the fitted model
        in ``variable``; a ``.pkl``/``.joblib`` file; or a Bento or model tag in the
        BentoML store (e.g. ``churn:abc123``).
    variable
        The training script's or notebook's variable holding the model.

    Returns
    -------
    Candidate
        The model object, ``source`` and its kind.
    """
    kind = check_source(source)
    if kind in (SCRIPT, NOTEBOOK):
        namespace = _run_script(source) if kind == SCRIPT else _run_notebook(source)
        if variable not in namespace:
            found = sorted(k for k, v in namespace.items()
                           if hasattr(v, "predict") and not isinstance(v, type))  # fmt: skip
            hint = f" Variables with predict: {', '.join(found)}." if found else ""
            raise ParameterError(f"{source} defines no variable {variable!r}.{hint}")
        model = namespace[variable]
    elif kind == PICKLE:
        model = _load_pickle(source)
    else:
        model = _load_from_store(source, kind)
    if not hasattr(model, "predict"):
        raise ParameterError(f"the model from {source} has no predict method "
                             f"({type(model).__name__}).")  # fmt: skip
    return Candidate(model, source, kind)
