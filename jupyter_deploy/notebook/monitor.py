"""The live monitor: an ipywidgets dashboard of one deployment, refreshed every second.

It reads the cluster's aggregator (the replicas' own counts), so it shows the same
numbers as any other kernel, the CLI or Prometheus. A background thread refreshes it,
which keeps the kernel free for other cells; ``stop()`` or the Stop button ends it.
Drift and accuracy are recomputed every :data:`QUALITY_EVERY` refreshes (they run
statistical tests over the whole window), and so are the streams the deployment consumes
(their lag and events/s: one call to each consumer and one to the broker).

Saved notebooks keep the last picture twice over: the widget state (nbclient and
JupyterLab save it), and a static HTML copy in the output for renderers without widgets.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

from . import charts

QUALITY_EVERY = 5


class Monitor:
    """Traffic, latency, errors and replicas of ``deployment``, live."""

    def __init__(
        self,
        deployment: Any,  # a client.deployment.Deployment (not imported: it imports us)
        interval_s: float = 1.0,
        window_s: int = 120,
    ):
        import ipywidgets as widgets

        self.deployment = deployment
        self.interval_s = interval_s
        self.window_s = window_s
        self.updates = 0
        self.summary = widgets.HTML()
        self.traffic, self.latency = widgets.HTML(), widgets.HTML()
        self.replicas, self.statuses = widgets.HTML(), widgets.HTML()
        self.quality, self.versions = widgets.HTML(), widgets.HTML()
        self.predictions, self.feature = widgets.HTML(), widgets.HTML()
        self.drift, self.importance = widgets.HTML(), widgets.HTML()
        self.segments = widgets.HTML()  # deployments made with segments= only
        self.streams = widgets.HTML()  # deployments with stream consumers only
        stop = widgets.Button(description="Stop updates", layout={"width": "140px"})
        stop.on_click(lambda _button: self.stop())
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.summary, stop]),
                self.versions,
                widgets.HBox([self.traffic, self.latency]),
                widgets.HBox([self.replicas, self.statuses]),
                self.quality,
                widgets.HBox([self.predictions, self.feature]),
                widgets.HBox([self.drift, self.importance]),
                self.segments,
                self.streams,
            ]
        )
        close = self.widget.close

        def close_and_stop() -> None:  # closing the widget ends its updates too
            self.stop()
            close()

        self.widget.close = close_and_stop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> Monitor:
        """Refresh in the background until :meth:`stop` (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True, name="jd-monitor")
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the updates; the widget keeps showing the last snapshot."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self.summary.value += " <i>(updates stopped)</i>"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception as exc:  # the cluster may be gone; show it and keep trying
                self.summary.value = f"<b>{html.escape(self.deployment.name)}</b>: {exc}"
            self._stop.wait(self.interval_s)

    # -- drawing ----------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the aggregator once and redraw every chart."""
        from ..rollout import serving

        snap = self.deployment.metrics(self.window_s)
        replicas_now = serving.application_status(self.deployment.name)["replicas"]
        series = snap["series"]
        xs = [p["t"] - time.time() for p in series]
        p = snap["latency_ms"]
        fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        batch = snap.get("batch") or {"jobs": 0}
        self.traffic.value = charts.line("requests/s", xs, [p["requests"] for p in series])
        self.latency.value = charts.line("p95 latency", xs, [p["p95_ms"] for p in series], " ms")
        self.replicas.value = charts.line("replicas serving", xs, [p["replicas"] for p in series])
        self.statuses.value = charts.bars(f"status, last {self.window_s} s", snap["by_status"])
        # the summary last: once it shows a snapshot, every chart above shows it too
        self.summary.value = (
            f"<b>{html.escape(self.deployment.name)}</b> v{self.deployment.version} · "
            f"{snap['total_requests']} requests since deploy · "
            f"{snap['rate_rps']:.1f} req/s · errors {snap['error_rate']:.1%} · "
            f"p50/p95/p99 {fmt(p['p50'])}/{fmt(p['p95'])}/{fmt(p['p99'])} ms · "
            f"replicas {replicas_now.get('RUNNING', 0)} running"
            + (f" · batch {batch['jobs']} jobs, {batch['rows']:,} rows" if batch["jobs"] else "")
        )
        self.updates += 1
        if self.updates % QUALITY_EVERY == 1:  # after the first traffic picture, then every 5
            self.refresh_quality()
            self.refresh_streams()

    def refresh_versions(self) -> None:
        """With two versions live (a split, a canary, a shadow): them side by side."""
        traffic = self.deployment.traffic()
        canary = traffic["canary"]
        if len(traffic["weights"]) < 2 and traffic["shadow"] is None:
            self.versions.value = ""
            return
        rows = self.deployment.compare(self.window_s).reset_index().to_dict("records")
        line = ""
        if canary is not None and canary["state"] == "running":
            wait = max(0.0, (canary["next_decision"] or 0) - time.time())
            line = (f"<div>canary v{canary['version']} at {canary['share']:.0%} (step "
                    f"{canary['step'] + 1} of {len(canary['steps'])}), next decision in "
                    f"{wait:.0f} s · {html.escape(canary['reason'])}</div>")  # fmt: skip
        self.versions.value = line + charts.versions_table(rows, self.window_s)

    def refresh_quality(self) -> None:
        """Drift of inputs and predictions, and accuracy from feedback."""
        self.refresh_versions()
        report = self.deployment.drift()
        # Live importance needs no sample (exact explainers); the reference's does.
        self.importance.value = charts.importance(report.get("importance"))
        if not report.get("available"):
            reason = report.get("reason") or "no data yet"
            self.quality.value = f"<i>Drift unavailable: {html.escape(reason)}</i>"
            return
        features = report["features"]
        flagged = [f["feature"] for f in features if f["drifted"]]
        acc = report["accuracy"]
        if acc.get("accuracy") is not None:
            score = f"accuracy {acc['accuracy']:.1%} on {acc['labels']} labels"
        elif acc.get("mae") is not None:
            score = f"MAE {acc['mae']:.4g}, RMSE {acc['rmse']:.4g} on {acc['labels']} labels"
        else:
            score = "no feedback yet (POST <url>/feedback)"
        drifted = (f"<b style='color:#d62728'>drift in {', '.join(map(html.escape, flagged))}</b>"
                   if flagged else "no input drift")  # fmt: skip
        self.quality.value = (
            f"Last {report['window_s']} s vs the training sample: {drifted} · {score}"
        )
        hist = report["prediction_histogram"].get("prediction")
        if hist:
            self.predictions.value = charts.histogram(
                f"predictions (n={hist['n']})", hist["labels"], hist["reference"], hist["live"]
            )
        ranked = sorted(features, key=lambda f: -(f["psi"] or 0))
        if ranked:
            top = report["histograms"][ranked[0]["feature"]]
            self.feature.value = charts.histogram(
                f"{top['feature']} (highest PSI)", top["labels"], top["reference"], top["live"]
            )
        self.drift.value = charts.drift_table(features + report["predictions"])
        if self.deployment.spec.get("segments"):
            self.segments.value = charts.segments_table(self.deployment.segments())

    def refresh_streams(self) -> None:
        """Lag and events/s of each stream the deployment's consumers read."""
        rows = [job.status().to_dict() for job in self.deployment.streams()]
        self.streams.value = charts.streams_table(rows) if rows else ""

    def snapshot_html(self) -> str:
        """The dashboard as static HTML (what a notebook renderer without widgets shows)."""

        def row(*panels: Any) -> str:
            cells = "".join(f"<div>{p.value}</div>" for p in panels if p.value)
            return f"<div style='display:flex;flex-wrap:wrap;gap:4px 12px'>{cells}</div>"

        return "<div>" + "".join((
            row(self.summary), row(self.versions), row(self.traffic, self.latency),
            row(self.replicas, self.statuses), row(self.quality),
            row(self.predictions, self.feature), row(self.drift, self.importance),
            row(self.segments), row(self.streams),
        )) + "</div>"  # fmt: skip

    def _repr_mimebundle_(self, **kwargs: object) -> dict[str, object]:
        try:
            self.refresh()  # the first picture now, so the static copy is not empty
        except Exception as exc:
            self.summary.value = f"<b>{html.escape(self.deployment.name)}</b>: {exc}"
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = self.snapshot_html()
        self.start()
        return bundle

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Monitor {self.deployment.name} ({state}, {self.updates} updates)>"
