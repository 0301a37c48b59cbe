"""Ray Serve's HAProxy ingress for the embedded head: its environment and ports.

HAProxy in front of replicas that each run their own HTTP server is what makes Ray Serve
fast on a small machine (docs/benchmarks.md): several times the throughput of Serve's
Python proxy. Ray reads these settings from the environment of ``ray start`` (the
controller, proxies and replicas inherit the raylet's), never from the driver's.

Every port and file Serve would otherwise take from fixed defaults is derived from
``JD_HTTP_PORT``, so two embedded clusters (a developer's and the test suite's) can run on
one machine, and HAProxy's stats and metrics listeners stay on loopback when the
endpoints do.
"""

from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

from .. import _ray, private
from ..settings import Settings
from . import tls

LOOPBACK = ("127.0.0.1", "localhost")

# A wrapper Serve runs instead of haproxy: it edits the config Serve generated, then
# becomes the bundled binary. HAProxy's stats and Prometheus frontends bind every
# interface and no Serve setting changes that, so wildcard binds become loopback; with
# TLS on, the endpoints' bind gets ``ssl crt`` (:mod:`.tls`).
_WRAPPER = """#!/bin/sh
# Written by jupyter_deploy.ingress: edit HAProxy's config, then run HAProxy.
take=0
for arg in "$@"; do
  if [ "$take" = 1 ]; then
    sed -i -E {edits} "$arg"
  fi
  take=0
  [ "$arg" = "-f" ] && take=1
done
exec "{binary}" "$@"
"""
_LOOPBACK_EDIT = r"s/^([[:space:]]*bind )[*]?:([0-9]+)/\1127.0.0.1:\2/"


def ports(settings: Settings) -> dict[str, int]:
    """The side ports of one embedded cluster, derived from its HTTP port."""
    http = settings.http_port_int
    return {
        "fallback_http": http + 500,  # 8500 for the default 8000, as Ray's own default
        "fallback_grpc": http + 1500,
        "stats": http + 404,
        "metrics": http + 1101,
    }


def environment(settings: Settings) -> dict[str, str]:
    """Environment variables for ``ray start`` that configure Serve's ingress."""
    if settings.ha_proxy != "1":
        return dict(_ray.HAPROXY_OFF)
    low, high = (int(p) for p in settings.replica_ports.split("-"))
    side = ports(settings)
    files = str(runtime_dir(settings))
    # A stopping replica keeps serving this long so HAProxy deregisters it first. Ray's
    # default of 30 s held every redeploy and delete for 30 s; a reload here takes ~0.1 s.
    env = _ray.haproxy_environment((low, high), side, files, draining_s=5)
    edits = [_LOOPBACK_EDIT] if settings.http_host in LOOPBACK else []
    if tls.enabled(settings):
        edits.append(tls.bind_edit(settings, tls.bundle(settings, Path(files))))
    if edits:
        env[_ray.HAPROXY_BINARY] = str(_write_wrapper(settings, edits))
    return env


def runtime_dir(settings: Settings) -> Path:
    """HAProxy's config, admin socket and state files: a private (0700) per-user folder.

    HAProxy's admin socket reconfigures the endpoints, so it must not sit in a folder
    others can enter or pre-create (a fixed ``/tmp`` name could be planted by another
    user). Unix socket paths are limited to ~100 characters and Serve adds a
    56-character node id below this folder, so it stays short: ``$XDG_RUNTIME_DIR``
    (per-user already) when its path is short, else ``/tmp/jd-<uid>``.
    """
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    short = xdg and len(xdg) <= 24 and Path(xdg).is_dir()
    root = Path(xdg) / "jd" if short else Path(f"/tmp/jd-{os.getuid()}")
    private.make_dir(root)
    return private.make_dir(root / f"haproxy-{settings.http_port}")


def _write_wrapper(settings: Settings, edits: list[str]) -> Path:
    path = settings.home_path / "haproxy-wrapper.sh"
    args = " ".join(f"-e {shlex.quote(e)}" for e in edits)
    path.write_text(_WRAPPER.format(edits=args, binary=_ray.haproxy_binary()))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
