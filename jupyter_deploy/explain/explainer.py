"""One deployed model's explainer: exact where the model allows it, sampled otherwise.

Chosen once per loaded version (:meth:`Explainer.build`), in this order:

1. a tree ensemble or a linear model, alone or as the last step of a Pipeline whose
   transformed features each come from one input column (:mod:`.columns`): exact
   contributions on the transformed features (:mod:`.exact`), summed back per input
   column (a one-hot column's parts add up to its source column's contribution);
2. anything else with a background: Shapley values sampled over column orderings on the
   input columns (:mod:`.agnostic`), bounded in time;
3. no background and no exact path: :class:`ExplainUnavailable` with the reason.

An exact path that turns out not to add up to any output of the model (within 1e-6) is
dropped for the sampled one on first use rather than answering wrong numbers.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ExplainUnavailable
from . import agnostic, exact
from .columns import dense, source_map, split
from .records import Explanation, Method

OUTPUTS = {
    "probability": "probability of the predicted class",
    "margin": "margin (log-odds or decision function) of the predicted class",
    "value": "predicted value",
}
_log = logging.getLogger("ray.serve")


class Explainer:
    """Explains a model's predictions for validated model inputs."""

    def __init__(self, model: Any, names: list[str], background: Any, weights: Any) -> None:
        self.model = model
        self.names = names
        self.background = background  # a model input of a few rows, or None
        self.weights = None if weights is None else np.asarray(weights, dtype=float)
        self.classes = getattr(model, "classes_", None)
        self.exact: exact.Exact | None = None
        self._to_z: Callable[[Any], np.ndarray] = dense
        self._fold: np.ndarray | None = None  # transformed feature -> input column (one-hot)

    @classmethod
    def build(
        cls, model: Any, names: list[str], to_input: Callable[[Any], Any], summary: Any
    ) -> Explainer:
        """The explainer of ``model``; ``summary`` is the Bento's background (or None)."""
        background, weights = None, None
        if summary and summary.get("rows"):
            background, weights = to_input(summary["rows"]), summary["weights"]
        self = cls(model, names, background, weights)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._find_exact()
        return self

    def _find_exact(self) -> None:
        pre, final = split(self.model)
        if pre is not None:
            mapping = source_map(pre, self.names, self.background)
            if mapping is None:
                return
            self._to_z = lambda x: dense(pre.transform(x))
        else:
            mapping = np.arange(len(self.names))
        try:
            zbg = None if self.background is None else self._to_z(self.background)
        except (TypeError, ValueError):  # inputs that are not numbers: no exact path
            return
        self._fold = np.eye(len(self.names))[mapping]
        found: tuple[str, Any] | None = None
        raw = exact.tree(final)
        if raw is not None:
            found = ("tree", raw)
        elif (raw := exact.linear(final, zbg, self.weights)) is not None:
            found = ("linear", raw)
        if found is not None:
            self.exact = exact.Exact(found[0], found[1], final, self.classes is not None)

    def explain(self, x: Any, deadline: float) -> Explanation:
        """Contributions of each input column for every row of ``x`` (a model input)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # feature-name warnings of the final step
            return self._explain(x, deadline)

    def _explain(self, x: Any, deadline: float) -> Explanation:
        z = None
        if self.exact is not None:
            # A Pipeline predicts with its last step on the transformed rows: transform once.
            z = self._to_z(x)
            predictions = np.asarray(self.exact.final.predict(z))
        else:
            predictions = np.asarray(self.model.predict(x))
        k = None
        if self.classes is not None:
            index = {c: i for i, c in enumerate(np.asarray(self.classes).tolist())}
            k = np.asarray([index[p] for p in predictions.tolist()])
        method: Method
        if self.exact is not None:
            assert z is not None
            got = self.exact(z, k)
            if got is not None:
                phi_z, base, out = got
                assert self._fold is not None and self.exact.space is not None
                return self._record(self.exact.method, OUTPUTS[self.exact.space],  # type: ignore[arg-type]
                                    predictions, phi_z @ self._fold, base, out)  # fmt: skip
            _log.warning("%s: exact explanation does not add up; sampling instead",
                         type(self.model).__name__)  # fmt: skip
            self.exact = None
        if self.background is None or self.weights is None:
            raise ExplainUnavailable(
                f"{type(self.model).__name__} is explained by sampling against background "
                "rows summarised from the deploy-time sample, and this deployment has none: "
                "deploy it again with sample="
            )
        f = self._sampled_output(k)
        method = "permutation"
        phi, base, out = agnostic.sampled(f, x, self.background, self.weights, deadline,
                                          type(self.model).__name__)  # fmt: skip
        space = "probability" if k is not None else "value"
        return self._record(method, OUTPUTS[space], predictions, phi, base, out)

    def _sampled_output(self, k: np.ndarray | None) -> Callable[[Any, int], np.ndarray]:
        model = self.model
        if k is None:
            return lambda rows, i: np.asarray(model.predict(rows), dtype=float)
        if not callable(getattr(model, "predict_proba", None)):
            raise ExplainUnavailable(
                f"{type(model).__name__} is a classifier without predict_proba: there is no "
                "output to sample contributions of"
            )
        return lambda rows, i: np.asarray(model.predict_proba(rows), dtype=float)[:, k[i]]

    def _record(
        self, method: Method, output: str, predictions: np.ndarray, phi: np.ndarray,
        base: np.ndarray, out: np.ndarray,
    ) -> Explanation:  # fmt: skip
        return Explanation(
            method=method,
            output=output,
            predictions=predictions.tolist(),
            base_values=[float(b) for b in base],
            outputs=[float(o) for o in out],
            contributions=[
                {name: float(v) for name, v in zip(self.names, row, strict=True)} for row in phi
            ],
        )
