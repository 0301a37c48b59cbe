"""The few rows explanations are measured against, summarised at deploy time.

The Bento stores no training rows (privacy), so the sample is summarised, as SHAP's
``kmeans`` does: k-means over the standardised numeric columns gives up to
:data:`ROWS` clusters, weighted by their size; each cluster's value of a numeric column
is the member value nearest its centre (so integers stay integers and one-hot steps see
values they know), of any other column the most frequent one. No row of the sample is
stored as it was unless a cluster has one member.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

ROWS = 10
SEED = 0


def summarise(frame: Any, rows: int = ROWS) -> dict[str, Any]:
    """``{"rows": [[...]], "weights": [...]}``: JSON rows in the frame's column order."""
    n = len(frame)
    if n == 0:
        return {"rows": [], "weights": []}
    numeric = [c for c in frame.columns if frame[c].dtype.kind in "biuf"]
    k = min(rows, n)
    if numeric and k < n:
        from sklearn.cluster import KMeans

        values = frame[numeric].to_numpy(dtype=float)
        filled = np.where(np.isnan(values), np.nanmean(values, axis=0), values)
        filled = np.nan_to_num(filled)
        scale = filled.std(axis=0)
        scaled = (filled - filled.mean(axis=0)) / np.where(scale > 0, scale, 1)
        labels = KMeans(k, n_init=3, random_state=SEED).fit_predict(scaled)
    else:
        labels = np.arange(n) % k
    out_rows, weights = [], []
    for c in range(k):
        members = frame[labels == c]
        if not len(members):
            continue
        row = members.iloc[[0]].copy()
        for col in frame.columns:
            column = members[col]
            if col in numeric:
                centre = np.nanmean(column.to_numpy(dtype=float))
                distance = np.abs(column.to_numpy(dtype=float) - centre)
                pick = column.iloc[int(np.nanargmin(distance))] if not np.isnan(centre) else None
            else:
                mode = column.mode(dropna=False)
                pick = mode.iloc[0] if len(mode) else None
            row[col] = pick if pick is not None else column.iloc[0]
        out_rows.append(json.loads(row.to_json(orient="values", date_format="iso"))[0])
        weights.append(len(members))
    return {"rows": out_rows, "weights": weights}
