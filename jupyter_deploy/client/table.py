"""The deployments of a cluster as a table (``%deployments``, ``jupyter-deploy list``)."""

from __future__ import annotations

import html
from typing import Any

from .deployment import Deployment


class DeploymentTable(list[Deployment]):
    """A list of deployments that shows as a table in a notebook (``%deployments``)."""

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "name": d.name,
                "version": d.version,
                "status": d._status.get("status", ""),
                "replicas": d._status.get("replicas", {}).get("RUNNING", 0),
                "runtime": d.runtime,
                "url": d.url,
                "bento": d.bento_tag,
            }
            for d in self
        ]

    def __repr__(self) -> str:
        if not self:
            return "No deployments."
        return "\n".join(
            f"{r['name']:<20} v{r['version']:<4} {r['status']:<10} "
            f"{r['replicas']} replica(s)  {r['runtime']:<6}  {r['url']}"
            for r in self.rows()
        )

    def _repr_html_(self) -> str:
        if not self:
            return "<i>No deployments.</i>"
        head = "".join(f"<th>{k}</th>" for k in self.rows()[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>"
            for r in self.rows()
        )
        return f"<table><tr>{head}</tr>{body}</table>"
