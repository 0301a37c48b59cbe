"""What a deployment handle tells about its model's answers: why, and for whom.

``Deployment`` inherits these: :meth:`Insight.explain` asks the endpoint's ``/explain``
(the same key and validation as ``/predict``), :meth:`Insight.importance` and
:meth:`Insight.segments` read the aggregator's figures.
"""

from __future__ import annotations

from typing import Any, Protocol


class Asker(Protocol):
    """What these methods read of the ``Deployment`` they are mixed into."""

    @property
    def name(self) -> str: ...
    def _post(self, method: str, x: Any) -> dict[str, Any]: ...


class Insight:
    """Explanations and segments of one deployment; mixed into ``Deployment``."""

    def explain(self: Asker, x: Any) -> Any:
        """Each input column's contribution to the model's answer for each row of ``x``.

        Under a traffic split the version that explains is the one that would answer the
        same ``predict`` request (by weight, or by the sticky key); ``df.attrs["version"]``
        says which.

        Returns a DataFrame: one row per instance, one column per input column, then
        ``base_value``, ``output`` (the explained model output: ``base_value`` plus the
        row's contributions) and ``prediction``. ``df.attrs`` holds what the output is
        (``"probability of the predicted class"``, a margin, or the predicted value), the
        method (``tree``, ``linear``, ``permutation``) and the request id.
        """
        import pandas as pd

        answer = self._post("explain", x)
        frame = pd.DataFrame(answer["explanations"])
        frame["base_value"] = answer["base_value"]
        frame["output"] = answer["output_values"]
        frame["prediction"] = answer["predictions"]
        frame.attrs.update(output=answer["output"], method=answer["method"],
                           version=answer.get("version"),
                           request_id=answer.get("request_id"))  # fmt: skip
        return frame

    def importance(self: Asker, window_s: int = 300) -> Any:
        """Global importance: each input column's mean |contribution|, live vs reference.

        ``live`` is measured on a sample of the live version's predict traffic over the
        last ``window_s`` seconds (``importance_rows_per_s`` rows a second per replica),
        ``reference`` on the deploy-time sample; None where it is not known. A DataFrame
        with the columns ``column``, ``live``, ``reference``, most important first;
        ``df.attrs`` holds the explained ``output``, the ``rows`` behind each side and
        the ``reason`` a side is missing.
        """
        import pandas as pd
        import ray

        from ..monitoring.aggregator import handle

        report = ray.get(handle().quality.remote(self.name, window_s))
        got = report.get("importance") or {"reason": report.get("reason", "")}
        rows = [{"column": c, **v} for c, v in got.get("columns", {}).items()]
        frame = pd.DataFrame(rows, columns=["column", "live", "reference"], dtype=object)
        frame[["live", "reference"]] = frame[["live", "reference"]].astype(float)
        frame = frame.sort_values(["reference", "live"], ascending=False, na_position="last")
        frame.attrs.update(output=got.get("output", ""), rows=got.get("rows", 0),
                           reference_rows=got.get("reference_rows", 0),
                           reason=got.get("reason", ""), window_s=window_s)  # fmt: skip
        return frame.reset_index(drop=True)

    def segments(self: Asker, window_s: int = 300) -> dict[str, Any]:
        """Requests, predictions, accuracy and drift per value of each segment column.

        Over the last ``window_s`` seconds of the live version; ``gaps`` lists, per
        column, the demographic parity difference and the accuracy difference between
        its values, and ``flagged`` whether either passed the deployment's thresholds.
        """
        import ray

        from ..monitoring.aggregator import handle

        return ray.get(handle().segments.remote(self.name, window_s))
