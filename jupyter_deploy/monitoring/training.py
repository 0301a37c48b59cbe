"""Training rows from the payload log: what was served, joined with its feedback labels.

Both halves are already in the log: every answered ``predict`` request with its
instances, and every ``feedback`` request with its ``{"request_id", "label"}`` items (a
list of labels for a request of several rows). They are joined by request id; the last
label sent for a request wins. Only what the log holds can be returned: requests the
log did not sample (``log_sample_rate``), redacted fields (null) and days past
``log_retention_days`` are missing, as are shadow answers (callers never saw them).
"""

from __future__ import annotations

from typing import Any

META = ["time", "version", "request_id"]
LABEL = "label"


def _labels(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Request id -> labels per row, from the log's answered feedback requests."""
    from .payload_log import _parsed

    out: dict[str, list[Any]] = {}
    for rec in records:
        if rec.get("method") != "feedback" or rec.get("status") != 200:
            continue
        body = _parsed(rec.get("request"))
        items = body.get("feedback", [body]) if isinstance(body, dict) else []
        for item in items:
            if isinstance(item, dict) and "request_id" in item and "label" in item:
                label = item["label"]
                out[str(item["request_id"])] = label if isinstance(label, list) else [label]
    return out


def training_frame(
    records: list[dict[str, Any]], columns: list[str], until: float | None = None
) -> Any:
    """One row per labelled instance: ``columns`` + label + time + version + request_id.

    Predictions from ``until`` on are left out; their feedback may come at any time.
    """
    import pandas as pd

    from .payload_log import _parsed

    labels = _labels(records)
    rows: list[dict[str, Any]] = []
    for rec in records:
        if rec.get("method") != "predict" or rec.get("status") != 200 or rec.get("shadow"):
            continue
        if until is not None and rec["time"] >= until:
            continue
        found = labels.get(str(rec["request_id"]))
        body = _parsed(rec.get("request"))
        instances = body.get("instances") if isinstance(body, dict) else None
        if found is None or not isinstance(instances, list) or len(instances) != len(found):
            continue
        for inst, label in zip(instances, found, strict=True):
            values = inst if isinstance(inst, dict) else dict(zip(columns, inst, strict=False))
            rows.append({**{c: values.get(c) for c in columns}, LABEL: label,
                         "time": rec["time"], "version": rec["version"],
                         "request_id": rec["request_id"]})  # fmt: skip
    frame = pd.DataFrame(rows, columns=[*columns, LABEL, *META])
    frame["time"] = pd.to_datetime(frame["time"], unit="s", utc=True)
    return frame.sort_values("time", kind="stable").reset_index(drop=True)
