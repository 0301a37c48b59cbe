"""What an explanation is, as it crosses the wire: typed, then JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Method = Literal["tree", "linear", "permutation"]


@dataclass(frozen=True)
class Explanation:
    """Contributions of each input column to each instance's model output.

    ``base_values[i] + sum(contributions[i].values()) == outputs[i]``: the value being
    explained is named by ``output`` (the probability or the margin of the predicted
    class, or the predicted value); ``base_values`` differ between rows only when rows
    were predicted as different classes.
    """

    method: Method
    output: str
    predictions: list[Any]
    base_values: list[float]
    outputs: list[float]
    contributions: list[dict[str, float]]

    @classmethod
    def join(cls, parts: list[Explanation]) -> Explanation:
        """Consecutive chunks of one request's rows, as one explanation."""
        first = parts[0]
        return cls(first.method, first.output,
                   [p for e in parts for p in e.predictions],
                   [b for e in parts for b in e.base_values],
                   [o for e in parts for o in e.outputs],
                   [c for e in parts for c in e.contributions])  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "predictions": self.predictions,
            "base_value": self.base_values,
            "output": self.output,
            "output_values": self.outputs,
            "method": self.method,
            "explanations": self.contributions,
        }
