"""The other runners of a deployment's Bento: export, batch and stream.

They load the very Bento the endpoint serves, with the same runtime and validation;
``Deployment`` inherits these methods.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from ..control.records import DeploymentRecord
from ..errors import ExportError


class Handle(Protocol):
    """What the runners read of the ``Deployment`` they are mixed into."""

    _record: DeploymentRecord

    @property
    def name(self) -> str: ...
    @property
    def bento_tag(self) -> str: ...
    @property
    def version(self) -> int | None: ...
    def versions(self) -> list[dict[str, Any]]: ...
    def refresh(self) -> Any: ...


def _target(handle: Handle, version: int | None) -> Any:
    """The version (default: live) as the batch and stream runners load it."""
    from ..batch.records import BatchTarget
    from ..errors import BatchSpecError

    handle.refresh()
    number = handle.version if version is None else version
    if number not in {v.version for v in handle._record.versions}:
        raise BatchSpecError(f"{handle.name} has no version {number}; see .versions()")
    return BatchTarget.from_version(handle.name, handle._record.version(number))


class Runners:
    """Export, batch and stream of one deployment; mixed into ``Deployment``."""

    def export(
        self: Handle,
        format: str,
        path: str,
        *,
        version: int | None = None,
        quantize: bool = False,
        sample: Any = None,
        **more: Any,
    ) -> Any:
        """Write the live (or ``version``'s) Bento as ``format``: onnx, bento, docker, kuberay.

        ``onnx`` returns a :class:`~jupyter_deploy.export.parity.ParityReport` (also
        written beside the graph) and refuses, writing nothing, when the graph would not
        answer like the model; ``sample=`` gives the rows to check on (default: rows drawn
        from the Bento's reference profile). ``bento`` returns the archive's path.
        ``docker`` writes a build context folder (``base_image=``), ``kuberay`` a
        ``RayService`` (``image=``, ``secret=``): both serve this deployment's settings.
        """
        from ..export import export
        from ..rollout.target import target_of

        tags = {v["version"]: v["bento_tag"] for v in self.versions()}
        if version is not None and version not in tags:
            raise ExportError(f"{self.name} has no version {version}; it has {sorted(tags)}.")
        tag = self.bento_tag if version is None else tags[version]
        options: dict[str, Any] = {"quantize": quantize, "sample": sample, **more}
        if format != "onnx":  # passed on only if set, so the format can refuse them
            options = {k: v for k, v in options.items() if v is not None and v is not False}
        number = self._record.live if version is None else version
        assert number is not None  # bento_tag above asserts a live version
        return export(tag, format, path, target=target_of(self._record, number), **options)

    def batch(
        self: Handle,
        data: Any,
        output: str | None = None,
        *,
        keep: list[str] | tuple[str, ...] = (),
        version: int | None = None,
        method: str = "predict",
        overwrite: bool = False,
        workers: int | None = None,
        progress: bool = True,
    ) -> Any:
        """Score a CSV/Parquet file, folder or glob (or a DataFrame) on the cluster.

        Writes ``output`` (.parquet/.csv: ``keep`` columns, prediction(s), ``version``, in
        input order) and ``<output>.errors.parquet`` (row, reason) for rows the endpoint
        would refuse; returns a ``BatchResult``. Without ``output`` (DataFrame input) it
        returns the scored DataFrame. See :func:`jupyter_deploy.batch.job.run`.
        """
        from ..batch import job

        return job.run(_target(self, version), data, output, keep=keep, method=method,
                       overwrite=overwrite, workers=workers, progress=progress)  # fmt: skip

    def stream(self: Handle, url: str, input: str, output: str, *, group: str = "jupyter_deploy",
               consumers: int = 1, batch_size: int = 256, version: int | None = None,
               method: str = "predict", password_env: str = "", dead_letter: str = "",
               claim_idle_ms: int = 30_000) -> Any:  # fmt: skip
        """Score a Redis stream (``XREADGROUP``) into another, on the cluster, until stopped.

        Each message's ``data`` field (JSON record) or its fields are one instance; the
        answer (``prediction``, ``version``, ``source_id``) is added to ``output`` and the
        input acknowledged together; refused messages go to ``<input>:dead`` (or
        ``dead_letter``) with their reason. The stream is desired state: its consumers
        outlive this kernel and come back after a cluster restart. Without ``version`` they
        follow the live version and split. A password goes in an environment variable named
        by ``password_env``, never in ``url`` (which is saved). Returns a ``StreamJob``
        (``status()``, ``stats()``, ``stop()``); see :mod:`jupyter_deploy.stream.jobs`.
        """
        from ..control.records import StreamRecord
        from ..errors import StreamSpecError
        from ..stream import jobs
        from ..stream.broker import split_url

        if split_url(url)[1] is not None:
            raise StreamSpecError("The broker URL holds a password, which would be saved with "
                                 "the stream: put it in an environment variable and pass "
                                 "password_env='VAR' and the URL without it.")  # fmt: skip
        if consumers < 1 or batch_size < 1 or claim_idle_ms < 0:
            raise StreamSpecError("consumers and batch_size must be >= 1, claim_idle_ms >= 0.")
        target = _target(self, version)  # checks the version exists (default: the live one)
        if method not in target.methods:
            raise StreamSpecError(f"{self.name} v{target.version} has no {method}")
        rec = StreamRecord(self.name, url, input, output, group, dead_letter, consumers,
                           batch_size, method, version, claim_idle_ms, password_env,
                           time.time())  # fmt: skip
        return jobs.start(rec)

    def streams(self: Handle) -> list[Any]:
        """The streams this deployment's consumers read (``StreamJob``s, any kernel's)."""
        from ..stream import jobs

        return jobs.jobs(self.name)
