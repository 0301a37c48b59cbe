"""A KubeRay ``RayService`` for one version of a deployment (``export("kuberay")``).

``serveConfigV2`` is :func:`.serve_config.serve_config` of the store's record: the
local deployment's route, autoscaling, replica resources and settings, and the version's
Bento, which the image carries (the container export). The endpoint token's hash is
read by the replica from a Kubernetes Secret the manifest only names (``secretKeyRef``
into both pod templates: Ray workers inherit the raylet's environment); the value is
never written here.

Ray's own ports ask for Ray's token (``authOptions``; KubeRay makes that Secret itself).
The cluster is sized from the deployment: one worker pod per Serve replica (CPU, memory
and GPUs of one replica, rounded up to whole units), between the deployment's minimum
and maximum replicas, with Ray's autoscaler adding pods when Serve adds replicas. The
head runs no replicas (``num-cpus: 0``), as KubeRay's guides advise.

Probes are ours: KubeRay's defaults call ``wget``, which a ``python:*-slim`` image has
not; these do the same HTTP checks (raylet, GCS, Serve's proxy) with Python.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml  # this module is imported only when a manifest is written

from ..errors import ExportError
from ..replica.secret import TOKEN_ENV
from ..rollout.target import Target
from .container import image_tag
from .serve_config import SERVE_PORT, serve_config

API_VERSION = "ray.io/v1"
MEMORY_PER_REPLICA_GI = 2  # a Ray worker with the scikit-learn stack and one model loaded
HEAD_CPU, HEAD_MEMORY_GI = 2, 4  # GCS, dashboard, Serve controller, proxy
_PROBE = "import sys, urllib.request as u; [u.urlopen(x, timeout=5) for x in sys.argv[1:]]"


def _probe(*urls: str, period: int = 5, failures: int = 10) -> dict[str, Any]:
    return {
        "exec": {"command": ["python", "-c", _PROBE, *urls]},
        "initialDelaySeconds": 10, "periodSeconds": period, "timeoutSeconds": 10,
        "failureThreshold": failures,
    }  # fmt: skip


def _container(name: str, image: str, secret: str | None, resources: dict[str, Any],
               ports: list[dict[str, Any]], probes: list[str]) -> dict[str, Any]:  # fmt: skip
    env: list[dict[str, Any]] = [{"name": "RAY_USAGE_STATS_ENABLED", "value": "0"}]
    if secret is not None:
        ref = {"secretKeyRef": {"name": secret, "key": "sha256"}}
        env.append({"name": TOKEN_ENV, "valueFrom": ref})
    return {
        "name": name,
        "image": image,
        "env": env,
        "resources": {"requests": dict(resources), "limits": dict(resources)},  # no anchors
        "ports": ports,
        "readinessProbe": _probe(*probes),
        "livenessProbe": _probe(*probes, period=10, failures=30),
    }


def _worker_resources(target: Target) -> dict[str, Any]:
    res = target.spec.resources
    out: dict[str, Any] = {
        "cpu": str(max(1, math.ceil(res.num_cpus))),
        "memory": f"{MEMORY_PER_REPLICA_GI}Gi",
    }
    if res.num_gpus:
        out["nvidia.com/gpu"] = str(math.ceil(res.num_gpus))
    return out


def rayservice(target: Target, image: str | None = None, secret: str | None = None) -> dict:
    """The ``RayService`` of ``target`` as a dict (``secret``: the token Secret's name)."""
    import json

    import ray

    spec, auto = target.spec, target.spec.autoscaling
    image = image or image_tag(target)
    secret = (secret or f"{spec.name}-token") if spec.auth else None
    raylet = "http://localhost:52365/api/local_raylet_healthz"
    head_ports = [{"containerPort": 6379, "name": "gcs-server"},
                  {"containerPort": 8265, "name": "dashboard"},
                  {"containerPort": 10001, "name": "client"},
                  {"containerPort": SERVE_PORT, "name": "serve"}]  # fmt: skip
    head = _container("ray-head", image, secret,
                      {"cpu": str(HEAD_CPU), "memory": f"{HEAD_MEMORY_GI}Gi"}, head_ports,
                      [raylet, "http://localhost:8265/api/gcs_healthz"])  # fmt: skip
    worker = _container("ray-worker", image, secret, _worker_resources(target),
                        [{"containerPort": SERVE_PORT, "name": "serve"}],
                        [raylet, f"http://localhost:{SERVE_PORT}/-/healthz"])  # fmt: skip
    worker_params: dict[str, str] = {}
    if spec.resources.custom:  # replicas pinned to custom resources find them on workers
        worker_params["resources"] = json.dumps(spec.resources.custom)
    config = serve_config(target)
    return {
        "apiVersion": API_VERSION,
        "kind": "RayService",
        "metadata": {
            "name": spec.name,
            "labels": {"app.kubernetes.io/name": spec.name, "jupyter-deploy/version": str(
                target.version)},
            "annotations": {"jupyter-deploy/bento": target.bento_tag},
        },
        "spec": {
            "serveConfigV2": yaml.safe_dump(config, sort_keys=False),
            "rayClusterConfig": {
                "rayVersion": ray.__version__,
                # Ray's token auth on the cluster's own ports, the token in a Secret that
                # KubeRay (>= 1.5.1) makes: closed by default, as the embedded cluster is.
                "authOptions": {"mode": "token"},
                "enableInTreeAutoscaling": auto.max_replicas > auto.min_replicas,
                "headGroupSpec": {
                    "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
                    "template": {"spec": {"containers": [head]}},
                },
                "workerGroupSpecs": [{
                    "groupName": "replicas",
                    "replicas": max(1, auto.min_replicas),
                    "minReplicas": max(1, auto.min_replicas),
                    "maxReplicas": auto.max_replicas,
                    "rayStartParams": worker_params,
                    "template": {"spec": {"containers": [worker]}},
                }],
            },
        },
    }  # fmt: skip


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (``serveConfigV2``) as YAML blocks a person can read and diff."""


def _block(dumper: Any, text: str) -> Any:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _block)


def export_kuberay(
    target: Target, path: str | Path, image: str | None = None, secret: str | None = None
) -> str:
    """Write the ``RayService`` YAML of ``target`` to the new file ``path``; return it."""
    out = Path(path)
    if out.exists():
        raise ExportError(f"{out} exists; remove it or choose another path.")
    manifest = rayservice(target, image, secret)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(yaml.dump(manifest, Dumper=_Dumper, sort_keys=False))
    tmp.rename(out)
    return str(out)
