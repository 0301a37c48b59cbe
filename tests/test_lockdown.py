"""The embedded cluster is closed to the network: loopback sockets and Ray's token auth."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import wait_for

from jupyter_deploy.control import lockdown
from jupyter_deploy.control.cluster import session_pids
from jupyter_deploy.errors import UnsafePathError
from jupyter_deploy.settings import Settings, describe

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}

# A bare GCS call: the first thing any Ray driver or node does with the cluster.
GCS_CALL = """
import sys
from ray._raylet import GcsClient
try:
    GcsClient(address=sys.argv[1]).internal_kv_keys(b"", namespace=None, timeout=30)
    print("ACCEPTED")
except Exception as exc:
    print("REFUSED", type(exc).__name__)
"""


def test_token_file_is_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path / "home"))
    path = lockdown.ensure_token(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text()
    assert len(token) == 64 and int(token, 16)
    assert lockdown.ensure_token(settings).read_text() == token
    path.chmod(0o644)
    with pytest.raises(UnsafePathError, match="readable by other users"):
        lockdown.ensure_token(settings)


def test_a_planted_link_is_refused(tmp_path: Path) -> None:
    settings = Settings(home=str(tmp_path))
    (tmp_path / "elsewhere").write_text("x" * 64)
    lockdown.token_path(settings).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError, match="not a file owned by you"):
        lockdown.ensure_token(settings)


def test_exposing_the_cluster_is_an_explicit_setting(tmp_path: Path) -> None:
    closed = Settings(home=str(tmp_path))
    assert "--node-ip-address=127.0.0.1" in lockdown.head_args(closed)
    env = lockdown.head_environment(closed)
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN_PATH"] == str(lockdown.token_path(closed))
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"

    opened = Settings.from_env({"JD_HOME": str(tmp_path), "JD_EXPOSE_CLUSTER": "1"})
    assert not any(a.startswith("--node-ip-address") for a in lockdown.head_args(opened))
    env = lockdown.head_environment(opened)
    assert env["RAY_AUTH_MODE"] == "token" and "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in env
    assert "JD_EXPOSE_CLUSTER" in {var for var, _, _ in describe()}


def _listening(info: Any) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every listening TCP socket of the cluster."""
    found = []
    for pid in session_pids(info.pid):
        try:
            proc = psutil.Process(pid)
            conns = proc.net_connections(kind="inet")
            name = proc.name()
        except psutil.Error:
            continue  # a worker that just exited
        for c in conns:
            if c.status == psutil.CONN_LISTEN and c.type == socket.SOCK_STREAM:
                found.append((name, c.laddr.ip, c.laddr.port))
    return found


def _other_address() -> str | None:
    """A non-loopback IPv4 address of this machine, if it has one."""
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return str(a.address)
    return None


def _grpc_without_token(address: str, port: int) -> str:
    """Status of a call to a Serve replica's gRPC service, with no token.

    Dialling this machine's own network address, the kernel picks that address as the
    source too: the server sees a network peer, not loopback.
    """
    import grpc

    opts = [("grpc.enable_http_proxy", 0)]
    with grpc.insecure_channel(f"{address}:{port}", options=opts) as channel:
        call = channel.unary_unary("/ray.serve.ASGIService/HandleRequest")
        try:
            call(b"", timeout=20)
        except grpc.RpcError as exc:
            return f"{exc.code().name}: {exc.details()}"
    return "OK"


def _refused(source: str, address: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(5)
        s.bind((source, 0))  # the peer is this machine's network address, not loopback
        try:
            s.connect((address, port))
        except (ConnectionRefusedError, TimeoutError):
            return True
    return False


@pytest.mark.cluster
def test_every_socket_is_loopback_only_or_demands_the_token(iris_dep: Any) -> None:
    """GCS, raylet, agents, every actor's gRPC port, HAProxy and the replica's servers."""
    from jupyter_deploy.control import cluster

    info = cluster.current()
    assert info is not None
    sockets = wait_for(
        lambda: (found := _listening(info)) and "haproxy" in {n for n, _, _ in found} and found,
        60, "HAProxy to listen")  # fmt: skip
    names = {name for name, _, _ in sockets}
    assert {"gcs_server", "raylet"} <= names, sorted(names)
    # Serve 2.60 binds each replica's inter-deployment gRPC server to [::] with no
    # setting to change it; Ray's token guards it instead (checked below).
    exposed = [s for s in sockets if s[1] not in LOOPBACK]
    assert all(name.startswith("ray::ServeReplica") for name, _, _ in exposed), exposed

    other = _other_address()
    if other is None:
        pytest.skip(
            "this machine has no non-loopback IPv4 address to connect from; checked only "
            f"that {len(sockets) - len(exposed)} sockets are loopback-only"
        )
    for name, ip, port in sockets:
        if ip in LOOPBACK:
            assert _refused(other, other, port), f"{name} answers on {other}:{port}"
        else:
            status = _grpc_without_token(other, port)
            assert status.startswith("UNAUTHENTICATED"), (name, port, status)


def _gcs_call(address: str, **auth: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH_")}
    env.update(auth)
    out = subprocess.run([sys.executable, "-c", GCS_CALL, address], env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-500:]


@pytest.mark.cluster
def test_the_cluster_refuses_a_peer_without_its_token(cluster: Any) -> None:
    settings = Settings.from_env()
    path = lockdown.token_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # this driver was handed the token; processes it starts inherit it
    assert os.environ["RAY_AUTH_TOKEN_PATH"] == str(path)
    address = cluster.address
    assert _gcs_call(address) == "REFUSED AuthenticationError"
    wrong = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64}
    assert _gcs_call(address, **wrong) == "REFUSED AuthenticationError"
    right = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(path)}
    assert _gcs_call(address, **right) == "ACCEPTED"


SWITCH = """
import os, sys
from jupyter_deploy.control import lockdown
from jupyter_deploy.settings import Settings
settings = Settings(home=sys.argv[1])
lockdown.ensure_token(settings)
lockdown.use_token(settings)
import ray._private.ray_constants as constants
env = os.environ
during = (env["RAY_AUTH_MODE"], env["RAY_AUTH_TOKEN_PATH"], constants.ENABLE_RAY_CLUSTER)
lockdown.forget_token()
after = (env.get("RAY_AUTH_MODE"), env.get("RAY_AUTH_TOKEN_PATH"), constants.ENABLE_RAY_CLUSTER)
print(repr((during, after)))
"""


def test_leaving_the_embedded_cluster_gives_back_the_users_ray_settings(tmp_path: Path) -> None:
    """A kernel that used the embedded cluster, then RAY_ADDRESS, gets its own auth back."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["RAY_AUTH_MODE"] = "disabled"  # the user's own choice, for their own cluster
    out = subprocess.run([sys.executable, "-c", SWITCH, str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    path = str(tmp_path / lockdown.TOKEN_FILE)
    assert out.stdout.strip() == repr((("token", path, False), ("disabled", None, True)))
