"""Small SVG charts for the monitor widget.

The monitor draws its charts as inline SVG inside ipywidgets ``HTML`` widgets: no second
frontend extension to install or keep in step with JupyterLab, and the widget state saved
in a notebook (or its static fallback) still shows the last picture when the notebook is
opened without a kernel.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

WIDTH, HEIGHT, PAD = 300, 90, 22


def line(title: str, xs: Sequence[float], ys: Sequence[float | None], unit: str = "") -> str:
    """A line chart of ``ys`` over ``xs`` (gaps where a value is None), with its latest value."""
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None]
    latest = f"{points[-1][1]:.3g}{unit}" if points else "-"
    head = (
        f"<svg width='{WIDTH}' height='{HEIGHT}' viewBox='0 0 {WIDTH} {HEIGHT}' "
        "xmlns='http://www.w3.org/2000/svg' style='font:11px sans-serif'>"
        f"<text x='4' y='13'>{html.escape(title)}: <tspan font-weight='bold'>{latest}</tspan>"
        "</text>"
    )
    if len(points) < 2:
        return head + f"<text x='4' y='{HEIGHT // 2 + 8}' fill='#888'>waiting for data</text></svg>"
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    top = max(p[1] for p in points) or 1.0
    scale_x = (WIDTH - 2 * PAD) / ((x1 - x0) or 1)
    scale_y = (HEIGHT - PAD - 18) / top
    path = " ".join(
        f"{PAD + (x - x0) * scale_x:.1f},{HEIGHT - PAD - y * scale_y:.1f}" for x, y in points
    )
    base = HEIGHT - PAD
    axis = f"<line x1='{PAD}' y1='{base}' x2='{WIDTH - PAD}' y2='{base}' stroke='#bbb'/>"
    label = (
        f"<text x='{WIDTH - PAD}' y='{HEIGHT - 6}' text-anchor='end' fill='#888'>"
        f"max {top:.3g}{unit}</text>"
    )
    return (
        head
        + axis
        + f"<polyline fill='none' stroke='#1f77b4' stroke-width='1.5' points='{path}'/>"
        + label
        + "</svg>"
    )


def bars(title: str, counts: dict[str, int]) -> str:
    """A horizontal bar per key (e.g. HTTP status), longest first."""
    items = sorted(counts.items(), key=lambda kv: -kv[1])[:6]
    height = 18 + 16 * max(1, len(items))
    top = max((n for _, n in items), default=1) or 1
    rows = [
        f"<text x='4' y='{30 + 16 * i}'>{html.escape(k)}</text>"
        f"<rect x='60' y='{20 + 16 * i}' width='{(WIDTH - 120) * n / top:.1f}' height='12' "
        f"fill='{'#2ca02c' if k.startswith('2') else '#d62728'}'/>"
        f"<text x='{WIDTH - 4}' y='{30 + 16 * i}' text-anchor='end'>{n}</text>"
        for i, (k, n) in enumerate(items)
    ]
    empty = [] if items else ["<text x='4' y='30' fill='#888'>no requests yet</text>"]
    return (
        f"<svg width='{WIDTH}' height='{height}' xmlns='http://www.w3.org/2000/svg' "
        f"style='font:11px sans-serif'><text x='4' y='13'>{html.escape(title)}</text>"
        + "".join(rows + empty)
        + "</svg>"
    )


def histogram(title: str, labels: Sequence[str], reference: Sequence[float],
              live: Sequence[float]) -> str:  # fmt: skip
    """Reference (grey) and live (blue) proportions side by side, one pair per bucket."""
    n = max(1, len(labels))
    top = max([*reference, *live, 1e-9])
    slot = (WIDTH - 2 * PAD) / n
    bar = max(1.0, slot / 2 - 1)
    base = HEIGHT - PAD
    scale = (HEIGHT - PAD - 20) / top
    parts = [
        f"<svg width='{WIDTH}' height='{HEIGHT}' xmlns='http://www.w3.org/2000/svg' "
        f"style='font:11px sans-serif'><text x='4' y='13'>{html.escape(title)} "
        "<tspan fill='#999'>■ reference</tspan> <tspan fill='#1f77b4'>■ live</tspan></text>"
    ]
    for i, (ref, got) in enumerate(zip(reference, live, strict=True)):
        x = PAD + i * slot
        parts.append(f"<rect x='{x:.1f}' y='{base - ref * scale:.1f}' width='{bar:.1f}' "
                     f"height='{ref * scale:.1f}' fill='#bbb'/>")  # fmt: skip
        parts.append(f"<rect x='{x + bar:.1f}' y='{base - got * scale:.1f}' width='{bar:.1f}' "
                     f"height='{got * scale:.1f}' fill='#1f77b4'/>")  # fmt: skip
    if labels:
        first, last = html.escape(str(labels[0])), html.escape(str(labels[-1]))
        parts.append(f"<text x='{PAD}' y='{HEIGHT - 6}' fill='#888'>{first}</text>")
        parts.append(f"<text x='{WIDTH - PAD}' y='{HEIGHT - 6}' text-anchor='end' "
                     f"fill='#888'>{last}</text>")  # fmt: skip
    return "".join(parts) + "</svg>"


def importance(report: dict[str, Any] | None) -> str:
    """Mean |contribution| per input column: reference (grey) and live (blue) bars."""
    if not report or not report.get("columns"):
        return ""
    items = sorted(report["columns"].items(),
                   key=lambda kv: -(kv[1]["reference"] or kv[1]["live"] or 0))[:12]  # fmt: skip
    top = max([v for _, d in items for v in d.values() if v is not None] + [1e-12])
    height = 22 + 20 * len(items)
    left, span = 90, WIDTH - 90 - 50
    parts = [
        f"<svg width='{WIDTH}' height='{height}' xmlns='http://www.w3.org/2000/svg' "
        "style='font:11px sans-serif'><text x='4' y='13'>importance (mean |contribution|) "
        "<tspan fill='#999'>■ reference</tspan> <tspan fill='#1f77b4'>■ live</tspan></text>"
    ]
    for i, (col, d) in enumerate(items):
        y = 20 + 20 * i
        parts.append(f"<text x='4' y='{y + 12}'>{html.escape(col[:14])}</text>")
        for j, (key, fill) in enumerate((("reference", "#bbb"), ("live", "#1f77b4"))):
            v = d[key]
            if v is not None:
                parts.append(f"<rect x='{left}' y='{y + 1 + 8 * j}' width='{span * v / top:.1f}' "
                             f"height='7' fill='{fill}'/>")  # fmt: skip
        live = d["live"]
        parts.append(f"<text x='{WIDTH - 4}' y='{y + 12}' text-anchor='end'>"
                     f"{'-' if live is None else f'{live:.3g}'}</text>")  # fmt: skip
    reason = str(report.get("reason") or "")
    note = f"<div style='font:11px sans-serif;color:#888'>{html.escape(reason)}</div>"
    return "".join(parts) + "</svg>" + (note if reason else "")


def drift_table(rows: Sequence[dict[str, object]]) -> str:
    """One line per feature: test, PSI, p-value, and a red flag when it drifted."""

    def num(value: object) -> str:
        return "-" if not isinstance(value, int | float) else f"{value:.3g}"

    body = "".join(
        f"<tr style='color:{'#d62728;font-weight:bold' if r['drifted'] else 'inherit'}'>"
        f"<td>{'⚠ ' if r['drifted'] else ''}{html.escape(str(r['feature']))}</td>"
        f"<td>{r['test']}</td><td>{num(r['psi'])}</td><td>{num(r['p_value'])}</td>"
        f"<td>{r['n']}</td></tr>"
        for r in rows
    )
    return (
        "<table style='font:11px sans-serif;border-collapse:collapse' cellpadding='3'>"
        "<tr><th align='left'>feature</th><th>test</th><th>PSI</th><th>p</th><th>n</th></tr>"
        f"{body}</table>"
    )


def segments_table(report: dict[str, Any]) -> str:
    """One line per value of each segment column; a flagged column's gap in red."""
    if not report.get("available"):
        return ""

    def pct(value: object) -> str:
        return "-" if not isinstance(value, int | float) else f"{value:.1%}"

    rows = []
    for col, data in report["columns"].items():
        flagged = data.get("flagged")
        style = "color:#d62728;font-weight:bold" if flagged else "color:inherit"
        reason = html.escape(str(data.get("reason", "")))
        mark = "⚠ " if flagged else ""
        rows.append(
            f"<tr style='{style}'><td colspan='5'>{mark}{html.escape(col)}: {reason}</td></tr>"
        )
        for value, item in data.get("values", {}).items():
            top = max(item.get("predictions", {}).items(), key=lambda kv: kv[1], default=None)
            shown = f"{html.escape(top[0])} {top[1]:.0%}" if top else "-"
            drifted = html.escape(", ".join(item.get("drifted", [])) or "-")
            rows.append(f"<tr><td>&nbsp;&nbsp;{html.escape(value)}</td><td>{item['rows']}</td>"
                        f"<td>{shown}</td><td>{pct(item.get('accuracy'))}</td>"
                        f"<td>{drifted}</td></tr>")  # fmt: skip
    return (
        "<table style='font:11px sans-serif;border-collapse:collapse' cellpadding='3'>"
        "<tr><th align='left'>segment</th><th>rows</th><th>top prediction</th>"
        f"<th>accuracy</th><th>drifted</th></tr>{''.join(rows)}</table>"
    )


def versions_table(rows: Sequence[dict[str, Any]], window_s: int) -> str:
    """The live versions side by side (``Deployment.compare()`` rows), baseline first."""

    def num(value: object, fmt: str) -> str:  # None, or NaN from a DataFrame: no figure
        ok = isinstance(value, int | float) and value == value
        return format(value, fmt) if ok else "-"

    def diff(r: dict[str, Any], key: str, fmt: str) -> str:
        d = r.get(key)  # a DataFrame gives the baseline's row NaN here, not None
        if not isinstance(d, dict) or d.get("diff") is None:
            return ""
        lo, hi = d["ci95"]
        ci = f"95 % {format(lo, fmt)}…{format(hi, fmt)}"
        return f" <small>({format(d['diff'], '+' + fmt)}, {ci})</small>"

    body = "".join(
        f"<tr><td>v{r['version']} {html.escape(r['role'])}</td>"
        f"<td>{num(r['share'], '.0%')}</td><td>{num(r['requests'] / window_s, '.1f')}</td>"
        f"<td>{num(r['error_rate'], '.1%')}{diff(r, 'error_rate_vs_baseline', '.1%')}</td>"
        f"<td>{num(r['p95_ms'], '.1f')}</td>"
        f"<td>{html.escape(', '.join(f'{k} {v:.0%}' for k, v in r['predictions'].items()))}</td>"
        f"<td>{num(r['accuracy'], '.1%')}{diff(r, 'accuracy_vs_baseline', '.1%')}"
        f"{_agreement(r.get('agreement'))}</td></tr>"
        for r in rows
    )
    return (
        "<table style='font:11px sans-serif;border-collapse:collapse' cellpadding='3'>"
        f"<caption style='text-align:left'>versions, last {window_s} s</caption>"
        "<tr><th align='left'>version</th><th>share</th><th>req/s</th><th>errors</th>"
        "<th>p95 ms</th><th>predictions</th><th>accuracy</th></tr>"
        f"{body}</table>"
    )


def _agreement(share: float | None) -> str:
    return "" if share is None or share != share else f" agrees {share:.1%}"


def streams_table(rows: Sequence[dict[str, Any]]) -> str:
    """One line per stream the deployment consumes: its consumers, rate and backlog."""

    def behind(r: dict[str, Any]) -> str:  # red when the backlog is over 10 s of its rate
        return "#d62728" if r["lag"] > 10 * max(r["events_per_s"], 1) else "inherit"

    body = "".join(
        f"<tr><td>{html.escape(str(r['input']))} → {html.escape(str(r['output']))}</td>"
        f"<td>{r['consumers']}</td><td>{r['events_per_s']:,.1f}</td>"
        f"<td style='color:{behind(r)}'>{r['lag']:,}</td><td>{r['processed']:,}</td>"
        f"<td>{r['failed']:,}</td><td>{r['dead_lettered']:,}</td></tr>"
        for r in rows
    )
    return (
        "<table style='font:11px sans-serif;border-collapse:collapse' cellpadding='3'>"
        "<tr><th align='left'>stream</th><th>consumers</th><th>events/s</th><th>lag</th>"
        f"<th>processed</th><th>failed</th><th>dead-lettered</th></tr>{body}</table>"
    )
