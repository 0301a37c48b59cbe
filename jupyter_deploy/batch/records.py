"""The typed records of a batch job: what it scores with, and what it reports.

:class:`BatchTarget` crosses into every scoring actor (Ray pickles it), so it carries
everything an actor needs to load the Bento and nothing it must look up again.
:class:`BatchResult` is what ``Deployment.batch`` returns for a file output.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from typing import Any

#: Columns the job adds; ``keep`` may not use these names (or their prefixes).
PREDICTION, VERSION, ERROR, ROW = "prediction", "version", "error", "row"
RESERVED_PREFIXES = ("prediction_", "proba_")


@dataclass(frozen=True)
class BatchTarget:
    """One version of a deployment, as the scoring actors load it."""

    name: str
    version: int
    bento_tag: str
    methods: tuple[str, ...]
    # (column, kind) of the input schema, in the model's order.
    columns: tuple[tuple[str, str], ...]

    @classmethod
    def from_version(cls, name: str, record: Any) -> BatchTarget:
        """From a registry ``VersionRecord`` (its number, Bento tag and model metadata)."""
        meta = record.meta or {}
        cols = meta.get("input_schema", {}).get("columns", [])
        return cls(
            name=name,
            version=int(record.version),
            bento_tag=str(record.bento_tag),
            methods=tuple(meta.get("methods", ["predict"])),
            columns=tuple((str(c["name"]), str(c["kind"])) for c in cols),
        )

    @property
    def features(self) -> list[str]:
        return [name for name, _ in self.columns]


@dataclass(frozen=True)
class BatchResult:
    """Summary of a finished batch job (``rows`` counts good and failed rows)."""

    name: str
    version: int
    method: str
    rows: int
    failed: int
    seconds: float
    output: str
    errors_output: str | None

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def succeeded(self) -> int:
        return self.rows - self.failed

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_s": round(self.rows_per_s, 1)}

    def __repr__(self) -> str:
        failed = f", {self.failed} failed -> {self.errors_output}" if self.failed else ""
        return (
            f"<BatchResult {self.name} v{self.version} {self.method}: {self.rows} rows in "
            f"{self.seconds:.1f} s ({self.rows_per_s:,.0f} rows/s){failed} -> {self.output}>"
        )

    def _repr_html_(self) -> str:
        rows = [
            ("Deployment", f"{html.escape(self.name)} v{self.version} ({self.method})"),
            ("Rows", f"{self.rows:,} ({self.succeeded:,} scored, {self.failed:,} failed)"),
            ("Speed", f"{self.rows_per_s:,.0f} rows/s in {self.seconds:.1f} s"),
            ("Output", f"<code>{html.escape(self.output)}</code>"),
        ]
        if self.errors_output:
            rows.append(("Failed rows", f"<code>{html.escape(self.errors_output)}</code>"))
        body = "".join(
            f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>"
            for k, v in rows
        )
        return f"<table><caption style='text-align:left'><b>Batch job</b></caption>{body}</table>"
