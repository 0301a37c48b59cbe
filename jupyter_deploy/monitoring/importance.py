"""Global importance: the mean |contribution| of each input column, live and at deploy.

Replicas explain a few rows of their live ``predict`` traffic every second, in their
explain thread (:mod:`jupyter_deploy.replica.sampling`), and push the sums of
|contribution| per column with their per-second counts, like the drift counts; the
sums add up across replicas and seconds in the same :mod:`.quality` slots. The
reference's figures were computed once at deploy time from the deploy-time sample and
stored in the Bento's reference (``importance``). A column whose live importance moved
away from its reference is one whose role in the model's answers changed: a shifted
input, or a shifted mix of inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Importance:
    """Sums of |contribution| per input column over some explained rows (they add up)."""

    rows: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    output: str = ""  # what was explained (the probability, margin or value)

    @classmethod
    def of(cls, contributions: list[dict[str, float]], output: str) -> Importance:
        """The sums of one explanation's rows (``Explanation.contributions``)."""
        sums: dict[str, float] = {}
        for row in contributions:
            for name, value in row.items():
                sums[name] = sums.get(name, 0.0) + abs(value)
        return cls(len(contributions), sums, output)

    def merge(self, other: Importance) -> None:
        self.rows += other.rows
        for name, value in other.sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.output = self.output or other.output

    def means(self) -> dict[str, float]:
        return {name: s / self.rows for name, s in self.sums.items()} if self.rows else {}

    def to_reference(self) -> dict[str, Any]:
        """What the Bento's reference stores (JSON)."""
        return {"rows": self.rows, "output": self.output, "mean_abs": self.means()}


def report(
    columns: list[str], live: Importance, reference: dict[str, Any] | None
) -> dict[str, Any]:
    """Per input column the live and the reference mean |contribution| (None: not known)."""
    ref = reference or {}
    means = ref.get("mean_abs") or {}
    reason = ""
    if not means:
        reason = ref.get("reason") or "no reference importance (deployed without a sample)"
    elif live.rows and ref.get("output") and live.output != ref["output"]:
        # e.g. the ONNX graph is explained by sampling a probability, the pickle exactly
        # in margins: the two are not comparable, so the reference is not shown.
        reason = f"the reference explained the {ref['output']}, live traffic the {live.output}"
        means = {}
    if not live.rows:
        reason = reason or "no live traffic explained in the window yet"
    got = live.means()
    return {
        "available": bool(live.rows or means),
        "reason": reason,
        "output": live.output or ref.get("output", ""),
        "rows": live.rows,
        "reference_rows": ref.get("rows", 0) if means else 0,
        "columns": {c: {"live": got.get(c), "reference": means.get(c)} for c in columns},
    }
