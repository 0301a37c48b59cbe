"""What should serve: one version of a deployment, and the replica settings it needs.

Two targets with equal :func:`code_key` can switch in place (same replica process);
otherwise Serve starts new replicas (:mod:`jupyter_deploy.rollout.serving`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from ..spec import DeploymentSpec


@dataclass(frozen=True)
class Target:
    """What should serve: one version of a deployment with its Bento and token."""

    spec: DeploymentSpec
    version: int
    bento_tag: str
    token: str


def replica_settings(target: Target) -> dict[str, Any]:
    """What a replica is built with, whatever version it serves."""
    from .._version import __version__

    spec = target.spec
    return {
        "name": spec.name,
        "max_batch_rows": spec.max_batch_rows,
        "token_sha256": hashlib.sha256(target.token.encode()).hexdigest() if spec.auth else None,
        "monitoring": spec.monitoring,
        "log_sample_rate": spec.log_sample_rate if spec.monitoring else 0.0,
        "drift_thresholds": dict(spec.drift),
        "log_retention_days": spec.log_retention_days,
        "log_redact": list(spec.log_redact),
        "resources": asdict(spec.resources),
        "jupyter_deploy": __version__,
    }


def code_key(target: Target) -> str:
    """Serve code version of ``target``: equal keys mean a version can switch in place."""
    settings = json.dumps(replica_settings(target), sort_keys=True)
    return hashlib.sha256(settings.encode()).hexdigest()[:16]
