"""The endpoint token's hash when the replica runs outside jupyter_deploy's control plane.

Locally the hash comes with the replica settings (:func:`~jupyter_deploy.rollout.target.
replica_settings`). An exported deployment (a container, a KubeRay ``RayService``) must
not carry it in the image or the manifest, where anyone who can read those could keep it
after the token is revoked; so its settings say ``token_secret`` and the hash is read
here, when the replica starts, from the environment (a Kubernetes Secret as an env var)
or from a mounted file (a Docker or Kubernetes secret volume).

Fail closed: a deployment exported with auth on refuses to start without a hash, rather
than serving without authentication.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..errors import ClusterError

TOKEN_ENV = "JD_TOKEN_SHA256"  # the hex SHA-256 of the token itself
TOKEN_FILE_ENV = "JD_TOKEN_SHA256_FILE"  # or a file that holds it
DEFAULT_TOKEN_FILE = "/run/secrets/jd-token-sha256"  # where `docker run --secret` puts it
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def token_hash(config: dict[str, Any]) -> str | None:
    """The SHA-256 the replica checks bearer tokens against; None when auth is off."""
    if config.get("token_sha256"):
        return str(config["token_sha256"])
    if not config.get("token_secret"):
        return None
    value = os.environ.get(TOKEN_ENV, "").strip().lower()
    if not value:
        path = Path(os.environ.get(TOKEN_FILE_ENV) or DEFAULT_TOKEN_FILE)
        value = path.read_text().strip().lower() if path.is_file() else ""
    if not _HEX64.match(value):
        raise ClusterError(
            f"{config.get('name')} needs its token's SHA-256 (64 hex digits) in ${TOKEN_ENV} "
            f"or in the file ${TOKEN_FILE_ENV} (default {DEFAULT_TOKEN_FILE}); "
            "docs/kubernetes.md shows how to make one."
        )
    return value
