"""Shared fixtures: one embedded Ray cluster per test session, tiny models.

The session gets its own JD_HOME, BENTOML_HOME and ports, so it never touches a
developer's cluster or Bento store, and its teardown checks that no process of the
cluster it started is left behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

# Before anything imports bentoml or ray: every path and port belongs to this session.
_TMP = Path(tempfile.mkdtemp(prefix="jd-tests-"))
os.environ["JD_HOME"] = str(_TMP / "home")
os.environ["BENTOML_HOME"] = str(_TMP / "bentoml")
os.environ.setdefault("JD_RAY_PORT", "6480")
os.environ.setdefault("JD_HTTP_PORT", "8480")
os.environ.setdefault("JD_REPLICA_PORTS", "32000-32999")
os.environ.setdefault("JD_NUM_CPUS", "8")  # room for surge rollouts of several deployments
os.environ.pop("RAY_ADDRESS", None)
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextlib.contextmanager
def bentoml_serve(tag: str, log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """``bentoml serve <tag>`` on a free loopback port until the block ends; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    bentoml_cli = str(Path(sys.executable).parent / "bentoml")
    with open(log, "w") as out:
        proc = subprocess.Popen([bentoml_cli, "serve", tag, "--host", "127.0.0.1", "--port",
                                 str(port)], stdout=out, stderr=subprocess.STDOUT,
                                env=env or os.environ.copy(), start_new_session=True)  # fmt: skip

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return proc.poll() is not None

        try:
            wait_for(ready, 120, f"bentoml serve {tag}")
            assert proc.poll() is None, log.read_text()[-3000:]
            yield url
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def people(n: int = 300, seed: int = 0) -> tuple[Any, Any]:
    """A small tabular set of people (numbers and categories); the label depends on two."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x = pd.DataFrame({
        "age": rng.integers(18, 80, n),
        "income": rng.normal(50, 15, n).round(2),
        "sex": rng.choice(["F", "M"], n),
        "region": rng.choice(["north", "south", "east"], n),
    })  # fmt: skip
    y = ((x["income"] > 50) ^ (x["region"] == "south")).to_numpy().astype(int)
    return x, y


class Load:
    """Posts one row in a loop (bounded in time) and records status and served version."""

    def __init__(self, dep: Any, limit_s: float = 180.0, row: Any = None) -> None:
        self.dep, self.limit_s = dep, limit_s
        self.row = row if row is not None else [[5.1, 3.5, 1.4, 0.2]]
        self.results: list[tuple[int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.limit_s
        headers = {"Authorization": f"Bearer {self.dep.token}"}
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    r = client.post(f"{self.dep.url}/predict", json={"instances": self.row},
                                    headers=headers)  # fmt: skip
                    self.results.append((r.status_code, r.headers.get("x-model-version", "")))
                except httpx.HTTPError as exc:
                    self.results.append((0, type(exc).__name__))
                time.sleep(0.01)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def failures(self) -> list[tuple[int, str]]:
        return [r for r in self.results if r[0] != 200]

    def versions(self) -> Counter[str]:
        return Counter(v for s, v in self.results if s == 200)


@contextlib.contextmanager
def redis_server(workdir: Path, *options: str) -> Iterator[str]:
    """A real ``redis-server`` (Debian's) on a free loopback port until the block ends."""
    if shutil.which("redis-server") is None:  # scripts/setup.sh installs it: CI must not skip
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    import redis

    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir), *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"

    def up() -> bool:
        try:
            return bool(redis.Redis.from_url(url).ping())
        except (redis.AuthenticationError, redis.ResponseError):
            return True  # it answers: it wants a password
        except redis.ConnectionError:
            return False

    try:
        wait_for(up, 30, "redis-server to answer PING")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def tmp_root() -> Path:
    return _TMP


@pytest.fixture(scope="session")
def cluster() -> Iterator[Any]:
    """The embedded cluster, started once; stopped at the end with a leftover check."""
    import jupyter_deploy as jd
    from jupyter_deploy.control.cluster import session_pids

    info = jd.start_cluster()
    yield info
    assert jd.stop_cluster() is True
    assert session_pids(info.pid) == [], "Ray processes outlived stop_cluster()"
    shutil.rmtree(_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return x, y


@pytest.fixture(scope="session")
def iris_pipe(iris: tuple[Any, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = iris
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(x, y)


@pytest.fixture(scope="session")
def iris_dep(cluster: Any, iris_pipe: Any, iris: tuple[Any, Any]) -> Any:
    """One deployment shared by the read-only HTTP tests."""
    import jupyter_deploy as jd

    return jd.deploy(iris_pipe, name="iris", sample=iris[0], progress=False)
