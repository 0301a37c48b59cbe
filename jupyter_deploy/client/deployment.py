"""The handle a user gets back: URL, token, versions, and calls against the endpoint.

It is a thin view of the control plane's record of it; :meth:`Deployment.refresh` re-reads
it, so a handle made in one kernel sees versions deployed from another.
"""

from __future__ import annotations

import html
import json
import time
from typing import Any

from ..control.records import DeploymentRecord, VersionRecord
from ..errors import PredictionError
from .insight import Insight
from .keys import Keys, secret_of
from .lifecycle import Lifecycle
from .runners import Runners


def _instances(x: Any) -> list[Any]:
    """Rows of a DataFrame, array or list as JSON-ready records or rows."""
    if type(x).__name__ == "DataFrame":
        return json.loads(x.to_json(orient="records", date_format="iso"))
    if type(x).__name__ == "Series":
        return [json.loads(x.to_json())]
    if hasattr(x, "tolist"):
        rows = x.tolist()
        return rows if rows and isinstance(rows[0], list) else [rows]
    return list(x)


def _plain(value: Any) -> Any:
    """A label as JSON: numpy scalars and arrays become Python values."""
    return value.tolist() if hasattr(value, "tolist") else value


def _epoch(when: Any) -> float | None:
    """Epoch seconds from a datetime, ISO string, number or timedelta (ago)."""
    import datetime as dt

    if when is None or isinstance(when, int | float):
        return when
    if isinstance(when, dt.timedelta):
        return time.time() - when.total_seconds()
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when)
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            when = when.astimezone()  # a naive time is the kernel's local time
        return when.timestamp()
    raise TypeError(f"cannot read a time from {when!r}")


class Deployment(Lifecycle, Keys, Runners, Insight):
    """A deployed model. Obtain one from :func:`jupyter_deploy.deploy` or ``get``."""

    def __init__(self, record: DeploymentRecord, base_url: str, status: dict[str, Any]) -> None:
        self._record = record
        self._base_url = base_url
        self._status = status

    # -- what it is -------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._record.name

    @property
    def url(self) -> str:
        return f"{self._base_url}/{self.name}"

    @property
    def token(self) -> str | None:
        """The key this process sends: the deployment's first key in the kernel that
        deployed it (or the first one :meth:`create_key` made here); None when auth is off
        or this process holds no key (only hashes are stored: make one with create_key).

        Only ever returned, never shown: what a cell displays is saved with the notebook,
        so the displays use :attr:`masked_token` and ``$JD_TOKEN`` instead.
        """
        return secret_of(self.name) if self.spec.get("auth", True) else None

    @property
    def masked_token(self) -> str:
        """The token's first 4 characters, enough to tell tokens apart, for displays."""
        token = self.token
        if not self.spec.get("auth", True):
            return "auth off"
        return f"{token[:4]}{'•' * 8}" if token else "none in this kernel (dep.create_key)"

    @property
    def version(self) -> int | None:
        return self._record.live

    @property
    def live(self) -> VersionRecord:
        assert self._record.live is not None
        return self._record.version(self._record.live)

    @property
    def bento_tag(self) -> str:
        return self.live.bento_tag

    @property
    def spec(self) -> dict[str, Any]:
        return self.live.spec

    @property
    def runtime(self) -> str:
        """What runs the live version's model: ``python`` (its predict) or ``onnx``."""
        return str(self.spec.get("runtime", "python"))

    def _runtime_note(self) -> str:
        """The runtime, and for a graph how it compared with the model at deploy time."""
        parity = self.live.meta.get("parity")
        if self.runtime != "onnx" or not parity:
            return self.runtime
        diff = parity.get("max_difference")
        return (
            f"onnx (checked on {parity['rows_checked']} {parity['rows_source']} rows: "
            f"{parity['label_agreement']:.2%} agree"
            + ("" if diff is None else f", largest difference {diff:.2g}")
            + ")"
        )

    def versions(self) -> list[dict[str, Any]]:
        """Every version with its Bento tag, runtime, creation time, and whether it is live."""
        return [
            {
                "version": v.version,
                "bento_tag": v.bento_tag,
                "runtime": v.spec.get("runtime", "python"),
                "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.created)),
                "live": v.version == self._record.live,
            }
            for v in self._record.versions
        ]

    def curl(self, method: str = "predict") -> str:
        """A ready-to-paste curl line for one instance of the input schema.

        It reads the token from ``$JD_TOKEN`` (set it from ``dep.token``), so the line can
        be shown, copied and saved without the secret.
        """
        cols = self.live.meta.get("input_schema", {}).get("columns", [])
        example = {c["name"]: (0 if c["kind"] != "string" else "a") for c in cols}
        auth = ' -H "Authorization: Bearer $JD_TOKEN"' if self.spec.get("auth", True) else ""
        body = json.dumps({"instances": [example]})
        return (
            f"curl -s -X POST {self.url}/{method}{auth} "
            f"-H 'Content-Type: application/json' -d '{body}'"
        )

    # -- calls ------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _post(self, method: str, x: Any) -> dict[str, Any]:
        import httpx

        try:
            resp = httpx.post(
                f"{self.url}/{method}",
                json={"instances": _instances(x)},
                headers=self._headers(),
                timeout=60,
            )
        except httpx.HTTPError as exc:
            raise PredictionError(f"{self.url} is unreachable: {exc}", 503) from None
        if resp.status_code != 200:
            try:
                message = resp.json().get("error", resp.text)
            except ValueError:
                message = resp.text
            raise PredictionError(f"{self.name}: {message}", resp.status_code)
        return resp.json()

    def predict(self, x: Any) -> Any:
        """Predictions of the live version for the rows of ``x`` (as a numpy array).

        The answer's request id is kept in :attr:`last_request_id` (for :meth:`feedback`).
        """
        import numpy as np

        answer = self._post("predict", x)
        self.last_request_id: str | None = answer.get("request_id")
        return np.asarray(answer["predictions"])

    def predict_proba(self, x: Any) -> Any:
        import numpy as np

        return np.asarray(self._post("predict_proba", x)["predictions"])

    # -- lifecycle (delegates to the API so every front door shares one path) -----------
    def refresh(self) -> Deployment:
        from .actions import lookup

        self._record, self._base_url, self._status = lookup(self.name)
        return self

    def status(self) -> dict[str, Any]:
        """Live status from the cluster: Serve state, replicas by state, version, URL."""
        from ..rollout import serving

        self.refresh()
        return {"name": self.name, "version": self.version, "url": self.url,
                **serving.application_status(self.name)}  # fmt: skip

    def metrics(self, window_s: int = 60) -> dict[str, Any]:
        """Traffic as counted by the replicas, aggregated in the cluster.

        Exact totals (by HTTP status and by version) since the deployment was made, and
        over the last ``window_s`` seconds: request rate, error rate, latency p50/p95/p99
        (ms, from a histogram), errors by kind, and a per-second series with replicas.
        ``batch``: the batch jobs run with :meth:`batch` (jobs, rows, failed, seconds,
        last), counted apart from this traffic.
        """
        import ray

        from ..monitoring.aggregator import handle

        return ray.get(handle().snapshot.remote(self.name, window_s))

    def drift(self, window_s: int = 300) -> dict[str, Any]:
        """Input and prediction drift of the live version, and accuracy from feedback.

        Over the last ``window_s`` seconds: per feature the PSI, the test (KS or
        chi-square), its p-value and whether it drifted; the same for the predictions;
        reference vs live histograms; accuracy (classification) or MAE/RMSE (regression).
        ``available`` is False, with a ``reason``, for a deployment made without a sample.
        """
        import ray

        from ..monitoring.aggregator import handle

        return ray.get(handle().quality.remote(self.name, window_s))

    def feedback(self, request_ids: Any, labels: Any) -> dict[str, Any]:
        """Send the true labels of earlier predictions (``POST <url>/feedback``)."""
        import httpx

        ids = [request_ids] if isinstance(request_ids, str) else list(request_ids)
        values = [labels] if isinstance(request_ids, str) else list(labels)
        items = [{"request_id": r, "label": _plain(y)} for r, y in zip(ids, values, strict=True)]
        resp = httpx.post(f"{self.url}/feedback", json={"feedback": items},
                          headers=self._headers(), timeout=60)  # fmt: skip
        if resp.status_code != 200:
            raise PredictionError(f"{self.name}: {resp.json().get('error')}", resp.status_code)
        return dict(resp.json())

    def logs(self, since: Any = None, until: Any = None, limit: int = 0) -> Any:
        """The payload log as a DataFrame: one row per sampled request, oldest first.

        ``since``/``until``: a datetime, an ISO string, epoch seconds, or a timedelta
        (that long ago). Columns: time, request_id, version, method, status, latency_ms,
        rows, request, response (bodies parsed from JSON).
        """
        import ray

        from ..monitoring.payload_log import handle, to_frame

        records = ray.get(handle().read.remote(self.name, _epoch(since), _epoch(until), limit))
        return to_frame(records)

    def training_data(self, since: Any = None, until: Any = None) -> Any:
        """Logged inputs joined with their feedback labels, oldest first, for retraining.

        One row per labelled instance: the input schema's columns, ``label``, ``time``
        (of the prediction), ``version`` (that answered) and ``request_id``. Only what the
        payload log kept is there (see ``log_sample_rate``, ``log_redact``).
        """
        import ray

        from ..monitoring.payload_log import handle
        from ..monitoring.training import training_frame

        # Labels often come after the window's predictions: read the log to now.
        records = ray.get(handle().read.remote(self.name, _epoch(since), None, 0))
        names = [c["name"] for c in self.live.meta.get("input_schema", {}).get("columns", [])]
        return training_frame(records, names, _epoch(until))

    def monitor(self, interval_s: float = 1.0, window_s: int = 120) -> Any:
        """A live dashboard of this deployment; it starts updating when displayed."""
        from ..notebook.monitor import Monitor

        return Monitor(self, interval_s, window_s)

    def prometheus(self) -> str:
        """The cluster's metrics in Prometheus text format (also at ``GET <url>/metrics``)."""
        import ray

        from ..monitoring.aggregator import handle

        return ray.get(handle().prometheus.remote())

    # -- display ----------------------------------------------------------------------
    def __repr__(self) -> str:
        return (
            f"<Deployment {self.name} v{self.version} {self.url} {self.runtime} "
            f"{self._status.get('status', '')}>"
        )

    def _repr_html_(self) -> str:
        replicas = self._status.get("replicas", {})
        auto = self.spec.get("autoscaling", {})
        rows = [
            ("URL", f"<code>{html.escape(self.url)}</code>"),
            ("Version", f"v{self.version} &nbsp; <code>{html.escape(self.bento_tag)}</code>"),
            ("Status", html.escape(str(self._status.get("status", "")))),
            ("Runtime", html.escape(self._runtime_note())),
            ("Replicas", f"{replicas.get('RUNNING', 0)} running "
                         f"(min {auto.get('min_replicas')}, max {auto.get('max_replicas')})"),
            ("Token", f"<code>{html.escape(self.masked_token)}</code> (in code: "
                      "<code>dep.token</code>; for curl: <code>export JD_TOKEN=...</code>)"
                      if self.token else html.escape(self.masked_token)),
            ("Try it", f"<code style='white-space:pre-wrap'>{html.escape(self.curl())}</code>"),
        ]  # fmt: skip
        body = "".join(
            f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>"
            for k, v in rows
        )
        caption = f"<caption style='text-align:left'><b>{html.escape(self.name)}</b></caption>"
        return f"<table>{caption}{body}</table>"
