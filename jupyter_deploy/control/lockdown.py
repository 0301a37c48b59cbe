"""Close the embedded cluster to the network: loopback sockets and Ray's token auth.

A Ray cluster runs whatever code its callers send, so anyone who reaches its GCS or a
worker's gRPC port owns the machine. By default the embedded head therefore

- binds to loopback only. ``ray start --node-ip-address=127.0.0.1`` is not enough on
  Linux: Ray 2.60 replaces a loopback node address by the machine's routable one
  (``resolve_ip_for_localhost``) and then binds its servers to every interface. Ray keeps
  loopback only in its single-machine mode (:data:`jupyter_deploy._ray.LOOPBACK_ONLY`).
- requires Ray's token (``RAY_AUTH_MODE=token``): every gRPC call between Ray processes,
  and every driver's, carries it. The token is a file under ``JD_HOME`` readable by its
  owner only; every driver jupyter_deploy starts (kernels, the CLI, the panel's child,
  papermill kernels) connects through :func:`jupyter_deploy.control.cluster.connect`,
  which hands it over with :func:`use_token`.

``JD_EXPOSE_CLUSTER=1`` is the explicit opt-in for a head other machines can join: it
binds the machine's address, still with the token.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .. import _ray, private
from ..errors import ClusterError
from ..settings import Settings

TOKEN_FILE = "ray-auth-token"


def exposed(settings: Settings) -> bool:
    """Whether the user opted in to a head reachable from other machines."""
    return settings.expose_cluster == "1"


def token_path(settings: Settings) -> Path:
    return settings.home_path / TOKEN_FILE


def ensure_token(settings: Settings) -> Path:
    """The cluster's token file, created owner-only (0600) on first use.

    Created exclusively, so a file planted at the path is never written into; an existing
    one must be this user's and private, or it is refused.
    """
    path = token_path(settings)
    if not path.parent.exists():  # a new JD_HOME is private; an existing one is left as is
        private.make_dir(path.parent)
    # Ray's own generator: 256 random bits, hex
    if not private.create_file(path, secrets.token_hex(32)):
        private.check_file(path)
    return path


def head_args(settings: Settings) -> list[str]:
    """``ray start`` arguments: the node's address (Ray's choice when exposed)."""
    # Ray Client's server cannot be turned off from ``ray start`` (port 0 is refused);
    # it binds the node address like the rest and is moved next to the GCS port so two
    # embedded clusters on one machine do not collide.
    client = f"--ray-client-server-port={int(settings.ray_port) + 1}"
    return [client] if exposed(settings) else [client, "--node-ip-address=127.0.0.1"]


def head_environment(settings: Settings) -> dict[str, str]:
    """``ray start`` environment: token auth always, loopback binds unless exposed."""
    ensure_token(settings)
    return driver_environment(settings)


def driver_environment(settings: Settings) -> dict[str, str]:
    """Environment of a separate driver process (a script, a benchmark) of this cluster:
    its token, and the loopback address kept (Ray reads that at import in a new process)."""
    env = _ray.token_auth_environment(str(token_path(settings)))
    if not exposed(settings):
        env.update(_ray.LOOPBACK_ONLY)
    return env


# What use_token replaced in os.environ, so forget_token can put the user's values back.
_replaced: dict[str, str | None] | None = None


def use_token(settings: Settings) -> None:
    """Make this process a driver of the embedded cluster: its token, in its environment.

    Ray's C++ core reads ``RAY_AUTH_*`` from the environment, so they are set in
    ``os.environ`` (children inherit them; papermill kernels connect through here anyway)
    and Ray's cached configuration is refreshed if Ray is loaded already.
    """
    global _replaced
    path = token_path(settings)
    if not path.exists():
        raise ClusterError(
            f"The embedded cluster's token {path} is missing; run `jupyter-deploy cluster "
            "stop` then start it again."
        )
    private.check_file(path)
    wanted = _ray.token_auth_environment(str(path))
    if _replaced is None:
        _replaced = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    _ray.reload_auth_config()
    _ray.keep_loopback(not exposed(settings))


def forget_token() -> None:
    """Undo :func:`use_token` before connecting to a cluster of the user's own.

    That cluster's token, if any, is the user's to give (``RAY_AUTH_TOKEN`` and friends):
    the values this process had before are put back.
    """
    global _replaced
    if _replaced is None:
        return
    for name, value in _replaced.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _replaced = None
    _ray.reload_auth_config()
    _ray.keep_loopback(False)
