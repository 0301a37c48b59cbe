"""A deployment's desired state as a Ray Serve config file (``ServeDeploySchema``).

The container export and the KubeRay export run the same document: the container's
entrypoint applies it to the Ray it starts (:mod:`.entrypoint`), KubeRay applies it as
the ``RayService``'s ``serveConfigV2``. It is made from the store's record through the
functions the local rollout uses (:func:`~jupyter_deploy.rollout.target.replica_settings`
and :func:`~jupyter_deploy.rollout.target.deployment_options`), so route, autoscaling,
replica resources, batching limits, monitoring and the version's Bento are the local
deployment's, not a second copy of them, and validated with Ray's own schema.

Two settings differ from a local replica's, because there is no control plane beside
an exported one: no key's hash is written (the target's keys are left out;
``token_secret``: the replica reads the hash of the key it accepts from a Secret when it
starts, :mod:`jupyter_deploy.replica.secret`), and
``standalone`` tells the replica there is no registry to report its version to; and no
payload log is kept.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .._ray import DEPLOYMENT
from ..errors import ExportError
from ..rollout.target import Target, deployment_options, replica_settings

#: Serve's application builder: the replica settings go in as ``args``.
IMPORT_PATH = "jupyter_deploy.replica.app:application"
SERVE_PORT = 8000  # Serve's default; KubeRay's serve Service targets it


def portable_settings(target: Target) -> dict[str, Any]:
    """The replica settings of ``target`` without a key's hash or a control plane."""
    settings = replica_settings(target)
    settings.update(token_sha256=None, token_secret=target.spec.auth, standalone=True)
    # Payload logs are private and expire under the store's rules; an exported replica has
    # no store, so it keeps no request bodies (metrics and drift still run in memory).
    settings["log_sample_rate"] = 0.0
    return settings


def serve_config(target: Target, host: str = "0.0.0.0", port: int = SERVE_PORT) -> dict[str, Any]:
    """The Serve config that serves ``target`` at its route, validated by Ray's schema.

    ``host`` defaults to every interface because the config runs in a container or a pod,
    where that is the only way in; the local cluster keeps listening on loopback.
    """
    spec = target.spec
    target = dataclasses.replace(target, keys=())  # the key's hash comes from a Secret
    app = {
        "name": spec.name,
        "route_prefix": spec.route,
        "import_path": IMPORT_PATH,
        "args": portable_settings(target),
        "deployments": [{"name": DEPLOYMENT, **deployment_options(target, spec.autoscaling)}],
    }
    config = {
        "proxy_location": "EveryNode",
        "http_options": {"host": host, "port": port},
        "applications": [app],
    }
    validate(config)
    return config


def validate(config: dict[str, Any]) -> None:
    """Raise :class:`ExportError` unless Ray's ``ServeDeploySchema`` accepts ``config``."""
    from pydantic import ValidationError
    from ray.serve.schema import ServeDeploySchema

    try:
        ServeDeploySchema.model_validate(config)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ExportError(f"Ray rejects the Serve config at {where}: {first['msg']}.") from None
