"""What should serve: one version of a deployment, and the replica settings it needs.

Two targets with equal :func:`code_key` can switch in place (same replica process);
otherwise Serve starts new replicas (:mod:`jupyter_deploy.rollout.serving`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ..control.keys import Grant
from ..control.records import DeploymentRecord, ServeTarget, Traffic
from ..spec import Autoscaling, DeploymentSpec


@dataclass(frozen=True)
class Target:
    """What should serve: the live version of a deployment with its Bento and keys (their
    hashes), and the traffic split with the other versions it needs (none: the live one
    takes all)."""

    spec: DeploymentSpec
    version: int
    bento_tag: str
    keys: tuple[Grant, ...] = ()
    traffic: Traffic | None = None
    bentos: dict[int, str] = field(default_factory=dict)

    def serve_target(self) -> ServeTarget:
        """What Serve pushes to the replicas (their ``user_config``)."""
        return ServeTarget(self.version, self.bento_tag, dict(self.bentos), self.traffic,
                           self.keys if self.spec.auth else ())  # fmt: skip


def replica_settings(target: Target) -> dict[str, Any]:
    """What a replica is built with, whatever version it serves."""
    from .._version import __version__

    spec = target.spec
    return {
        "name": spec.name,
        "max_batch_rows": spec.max_batch_rows,
        "auth": spec.auth,  # the keys themselves are pushed with the target, in place
        "monitoring": spec.monitoring,
        "log_sample_rate": spec.log_sample_rate if spec.monitoring else 0.0,
        "drift_thresholds": dict(spec.drift),
        "log_retention_days": spec.log_retention_days,
        "log_redact": list(spec.log_redact),
        "explain_timeout_s": spec.explain_timeout_s,
        "importance_rows_per_s": spec.importance_rows_per_s if spec.monitoring else 0.0,
        "segments": list(spec.segments),
        "fairness": dict(spec.fairness),
        "resources": asdict(spec.resources),
        "jupyter_deploy": __version__,
    }


def deployment_options(target: Target, autoscaling: Autoscaling) -> dict[str, Any]:
    """Serve's options for the ``model`` deployment of ``target``, in Serve config terms.

    One place for them: :mod:`.serving` passes them to ``serve.deployment().options()``,
    the KubeRay export writes them into ``serveConfigV2`` (``ray.serve.schema`` names).
    """
    res = target.spec.resources
    actor_options: dict[str, Any] = {"num_cpus": res.num_cpus, "num_gpus": res.num_gpus}
    if res.custom:
        actor_options["resources"] = dict(res.custom)
    return {
        "max_ongoing_requests": res.max_ongoing_requests,
        "autoscaling_config": {
            "min_replicas": autoscaling.min_replicas,
            "initial_replicas": max(1, autoscaling.min_replicas),
            "max_replicas": autoscaling.max_replicas,
            "target_ongoing_requests": autoscaling.target_ongoing_requests,
            "upscale_delay_s": autoscaling.upscale_delay_s,
            "downscale_delay_s": autoscaling.downscale_delay_s,
        },
        "ray_actor_options": actor_options,
        "logging_config": {"enable_access_log": False, "log_level": "WARNING"},
        # A replica leaves the routing table before it stops; requests take milliseconds,
        # so Ray's 20 s shutdown grace only slows rollouts down.
        "graceful_shutdown_wait_loop_s": 0.5,
        "graceful_shutdown_timeout_s": 3,
        # The version to serve, pushed to replicas through reconfigure() (in place).
        "user_config": target.serve_target().to_config(),
    }


def code_key(target: Target) -> str:
    """Serve code version of ``target``: equal keys mean a version can switch in place."""
    settings = json.dumps(replica_settings(target), sort_keys=True)
    return hashlib.sha256(settings.encode()).hexdigest()[:16]


def target_of(rec: DeploymentRecord, version: int, traffic: Traffic | None = None) -> Target:
    """What serving ``version`` of ``rec`` (with ``traffic``) means: spec, Bentos, keys."""
    entry = rec.version(version)
    bentos = {v: rec.version(v).bento_tag for v in traffic.versions()} if traffic else {}
    grants = tuple(k.grant() for k in rec.keys)
    return Target(DeploymentSpec.from_dict(entry.spec), version, entry.bento_tag, grants,
                  traffic, bentos)  # fmt: skip


def live_target(rec: DeploymentRecord) -> Target:
    """What the store says should serve now: the live version and its traffic."""
    assert rec.live is not None
    return target_of(rec, rec.live, rec.traffic)
