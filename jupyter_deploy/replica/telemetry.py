"""Everything a replica records about the requests it serves, in one place.

- counts (status, latency, errors, rows) per version, pushed each second to the
  aggregator (:class:`~jupyter_deploy.metrics.Recorder`);
- the inputs and predictions it served, as drift counts, and predictions by request id
  for feedback (:class:`~jupyter_deploy.observations.Observations`);
- a sample of the requests and responses for the payload log
  (:class:`~jupyter_deploy.payload_writer.PayloadWriter`);
- a few rows a second explained for global importance, when the deployment asks
  (:class:`~jupyter_deploy.replica.sampling.ImportanceSampler`).

None of it may slow or fail a request: each part only appends in memory on the request
path and ships in the background, and each part that cannot ship drops its data.
"""

from __future__ import annotations

import logging
from typing import Any

from ..monitoring.metrics import Recorder
from .loaded import LoadedVersion
from .observations import Observations, VersionReference
from .payload_writer import PayloadWriter
from .sampling import ImportanceSampler

_log = logging.getLogger("ray.serve")


class _PayloadSink:
    """Sends batches to the payload log actor; finds (or recreates) it after a failure."""

    def __init__(self, name: str, retention_days: int) -> None:
        self.name = name
        self.retention_days = retention_days
        self._actor: Any = None

    def send(self, lines: dict[str, str], dropped: int) -> Any:
        from ..monitoring import payload_log

        if self._actor is None:
            self._actor = payload_log.handle()
        return self._actor.append.remote(self.name, lines, dropped, self.retention_days)

    def done(self, ref: Any) -> bool:
        import ray

        ready, _ = ray.wait([ref], timeout=0)
        if not ready:
            return False
        try:
            ray.get(ready[0])
        except Exception:  # the actor died or failed to write: look it up again next time
            _log.warning("payload log actor failed; reconnecting", exc_info=True)
            self._actor = None
        return True


class Telemetry:
    """A replica's recorders; ``None`` parts are turned off by the deployment's spec."""

    def __init__(
        self,
        name: str,
        replica: str,
        aggregator: Any,
        log_sample_rate: float,
        thresholds: dict[str, Any],
        log_redact: list[str] | tuple[str, ...] = (),
        log_retention_days: int = 30,
        segments: list[str] | tuple[str, ...] = (),
        fairness: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.aggregator = aggregator
        self.thresholds = thresholds
        self.segments, self.fairness = list(segments), dict(fairness or {})
        self.observations = Observations(segments)
        self.recorder = Recorder(
            lambda version, counts: aggregator.push.remote(name, version, replica, counts),
            self.observations,
        )
        sink = _PayloadSink(name, log_retention_days)
        self.payloads = (
            PayloadWriter(log_sample_rate, sink.send, sink.done, frozenset(log_redact))
            if log_sample_rate > 0
            else None
        )
        self.importance: ImportanceSampler | None = None

    def sample_importance(self, sampler: ImportanceSampler) -> None:
        """Explain a sample of the predictions; the sums go out with the drift counts."""
        self.importance = sampler
        self.observations.explained = sampler.take

    def loaded(self, state: LoadedVersion) -> None:
        """Register a freshly loaded version's reference profiles (for drift)."""
        from ..monitoring.profile import ReferenceProfile

        if self.payloads is not None:
            self.payloads.columns[state.version] = list(state.runtime.schema.names)
        ref = state.reference or {}
        inputs, outputs = ref.get("inputs"), ref.get("predictions")
        self.observations.references[state.version] = VersionReference(
            columns=state.runtime.schema.names,
            inputs=ReferenceProfile.from_dict(inputs) if inputs else None,
            outputs=ReferenceProfile.from_dict(outputs) if outputs else None,
            classification=ref.get("task") == "classification",
        )
        reason = ref.get("reason") or (
            ""
            if inputs
            else "deployed without a sample: no reference profile of the inputs "
            "(deploy with sample= or reference=, or %deploy --sample VAR)"
        )
        ref = {k: v for k, v in ref.items() if k != "background"}  # the explainer's, not drift's
        report = {**ref, "thresholds": self.thresholds, "reason": reason,
                  "segments": self.segments, "fairness": self.fairness,
                  "columns": list(state.runtime.schema.names)}  # fmt: skip
        self.aggregator.register.remote(self.name, state.version, report)

    def prediction(self, state: LoadedVersion, x: Any, out: Any, request_id: str) -> None:
        self.observations.add(state.version, x, out, request_id)
        if self.importance is not None:
            self.importance.offer(state, x)
