"""Turn raw measurements into figures (ratios, medians, spreads) and write JSON + Markdown.

A figure is a ratio against a reference measured in the same run and, for load figures,
in the same round: each round yields one paired ratio (e.g. ours' req/s over bentoml's
req/s, measured minutes apart under the same background load) and the figure is the
median of those ratios, with their min and max as the spread. Pairing per round cancels
most of the drift a shared 2-core machine has between rounds.
"""

from __future__ import annotations

import json
import operator
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq}


@dataclass(frozen=True)
class Spread:
    """Median of a sample with its min and max."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread | None:
        vals = [v for v in values if v is not None]
        if not vals:
            return None
        return cls(statistics.median(vals), min(vals), max(vals), len(vals))


@dataclass
class Figure:
    """One reported figure, its reference, and its target if it has one."""

    name: str
    value: Spread | None
    reference: str
    unit: str = "ratio"
    target: tuple[str, float] | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
        op, threshold = self.target
        return bool(_OPS[op](self.value.median, threshold))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        return out


@dataclass(frozen=True)
class LoadRow:
    """One wrk run of one server in one round."""

    phase: str
    round: int
    server: str
    rows: int
    conns: int
    result: dict[str, float]


def paired_ratio(
    load: list[LoadRow], metric: str, server: str, reference: str, rows: int, conns: int
) -> Spread | None:
    """Median over rounds of ``metric(server) / metric(reference)`` within each round."""
    ratios = []
    for phase in sorted({r.phase for r in load}):
        by_round: dict[int, dict[str, float]] = {}
        for r in load:
            if r.phase == phase and r.rows == rows and r.conns == conns:
                by_round.setdefault(r.round, {})[r.server] = r.result[metric]
        for values in by_round.values():
            if server in values and reference in values and values[reference]:
                ratios.append(values[server] / values[reference])
    return Spread.of(ratios)


def absolute_table(load: list[LoadRow]) -> list[dict[str, Any]]:
    """Median req/s, p50, p99, errors and wrk CPU per (phase, server, payload, c)."""
    keys = sorted({(r.phase, r.server, r.rows, r.conns) for r in load})
    table = []
    for phase, server, rows, conns in keys:
        runs = [
            r.result
            for r in load
            if (r.phase, r.server, r.rows, r.conns) == (phase, server, rows, conns)
        ]
        table.append(
            {
                "phase": phase,
                "server": server,
                "rows": rows,
                "conns": conns,
                "rounds": len(runs),
                "rps": Spread.of(x["rps"] for x in runs),
                "p50_ms": Spread.of(x["p50_ms"] for x in runs),
                "p99_ms": Spread.of(x["p99_ms"] for x in runs),
                "errors": sum(int(x["errors"]) for x in runs),
                "loadgen_cpu_share": Spread.of(x["loadgen_cpu_share"] for x in runs),
            }
        )
    return table


def _fmt(s: Spread | None, digits: int = 2) -> str:
    if s is None:
        return "n/a"
    return f"{s.median:.{digits}f} ({s.low:.{digits}f}-{s.high:.{digits}f})"


def _markdown(figures: list[Figure], table: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# jupyter_deploy benchmark",
        "",
        f"Run {meta.get('started')} · {meta.get('mode')} · rounds {meta.get('rounds')} · "
        f"Ray ingress {meta.get('ray_ingress')} · "
        f"{meta.get('seconds')} s per load run · machine: {meta.get('machine')}",
        "",
        "Figures: median over rounds (min-max). Ratios are paired within each round.",
        "",
        "| figure | value | unit | reference | target | ok |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in figures:
        target = f"{f.target[0]} {f.target[1]}" if f.target else ""
        ok = {True: "yes", False: "**no**", None: ""}[f.passed]
        value = _fmt(f.value) if f.value else f"n/a {f.note}".strip()
        lines.append(f"| {f.name} | {value} | {f.unit} | {f.reference} | {target} | {ok} |")
    lines += [
        "",
        "## Load runs (absolute, medians over rounds)",
        "",
        "| phase | server | rows | c | req/s | p50 ms | p99 ms | errors | wrk CPU share |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in table:
        lines.append(
            f"| {r['phase']} | {r['server']} | {r['rows']} | {r['conns']} | "
            f"{_fmt(r['rps'], 0)} | {_fmt(r['p50_ms'], 1)} | {_fmt(r['p99_ms'], 1)} | "
            f"{r['errors']} | {_fmt(r['loadgen_cpu_share'], 3)} |"
        )
    notes = [f"- {f.name}: {f.note}" for f in figures if f.note]
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Spread):
        return asdict(obj)
    if isinstance(obj, Figure):
        return obj.to_dict()
    if isinstance(obj, LoadRow):
        return asdict(obj)
    raise TypeError(f"not serialisable: {type(obj).__name__}")


def write(
    out_dir: Path,
    figures: list[Figure],
    load: list[LoadRow],
    extra: dict[str, Any],
    meta: dict[str, Any],
) -> tuple[Path, Path]:
    """Write ``results.json`` (everything) and ``results.md`` (the tables)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    table = absolute_table(load)
    doc = {"meta": meta, "figures": figures, "load_table": table, "load_runs": load, **extra}
    json_path = out_dir / "results.json"
    json_path.write_text(json.dumps(doc, default=_jsonable, indent=2))
    md_path = out_dir / "results.md"
    md_path.write_text(_markdown(figures, table, meta))
    return json_path, md_path


def medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds of a standalone bench script."""
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


def emit(data: dict[str, Any], out: Path | None, name: str) -> None:
    """Print a standalone bench script's results as JSON; with ``out``, also write them there."""
    text = json.dumps(data, indent=2)
    print(text)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
