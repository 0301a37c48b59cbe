"""Scoped, hashed, revocable keys on a real deployment with two replicas, over real HTTP,
and through the magic and the CLI."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import wait_for

pytestmark = pytest.mark.cluster

ROW = {"instances": [[5.1, 3.5, 1.4, 0.2]]}


@pytest.fixture(scope="module")
def keyed(cluster: Any, iris_pipe: Any, iris: tuple[Any, Any]) -> Any:
    import jupyter_deploy as jd

    dep = jd.deploy(iris_pipe, name="keyed", sample=iris[0], min_replicas=2, max_replicas=2,
                    progress=False)  # fmt: skip
    yield dep
    dep.delete()


def _keys(dep: Any) -> list[dict[str, Any]]:
    return dep.keys()  # type: ignore[no-any-return]


def _call(dep: Any, secret: str | None, route: str) -> int:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    if route in ("predict", "predict_proba", "feedback"):
        body = ROW if route != "feedback" else {"request_id": "nope", "label": 0}
        return httpx.post(f"{dep.url}/{route}", json=body, headers=headers, timeout=30).status_code
    return httpx.get(f"{dep.url}/{route}", headers=headers, timeout=30).status_code


def test_a_scoped_key_calls_only_its_routes(keyed: Any) -> None:
    secret = keyed.create_key("mobile", scopes=["predict"],
                              expires_in=datetime.timedelta(days=30))  # fmt: skip
    assert secret != keyed.token and len(secret) >= 32
    assert _call(keyed, secret, "predict") == 200
    assert _call(keyed, secret, "predict_proba") == 200
    for route in ("metrics", "docs.json", "metadata", "feedback"):
        assert _call(keyed, secret, route) == 403, route
    reader = keyed.create_key("grafana", scopes=["metrics"])
    assert _call(keyed, reader, "metrics") == 200 and _call(keyed, reader, "docs.json") == 200
    assert _call(keyed, reader, "predict") == 403
    for route in ("predict", "metrics", "docs"):  # the first key has every scope
        assert _call(keyed, keyed.token, route) == 200, route
    listed = {k["name"]: k for k in _keys(keyed)}
    assert set(listed) == {"default", "mobile", "grafana"}
    assert listed["mobile"]["scopes"] == ["predict"] and listed["mobile"]["expires"]
    assert listed["default"]["scopes"] == ["predict", "feedback", "metrics"]
    text = json.dumps(_keys(keyed))
    assert secret not in text and reader not in text and keyed.token not in text
    # Last use reaches the store in the replicas' next batch (every few seconds).
    used = wait_for(lambda: next(k for k in _keys(keyed) if k["name"] == "mobile")["last_used"],
                    30, "the last use of 'mobile'")  # fmt: skip
    assert used >= listed["mobile"]["created"]
    keyed.revoke_key("grafana")


def test_a_revoked_key_is_refused_by_every_replica_when_revoke_returns(keyed: Any) -> None:
    secret = keyed.create_key("laptop", scopes=["predict"])
    assert _call(keyed, secret, "predict") == 200
    started = time.monotonic()
    keyed.revoke_key("laptop")
    took = time.monotonic() - started
    print(f"revoke took {took:.2f} s")  # the figure in docs/benchmarks.md; no timed assertion
    # Two replicas, many connections: each request may reach either one.
    assert {_call(keyed, secret, "predict") for _ in range(40)} == {401}
    assert _call(keyed, keyed.token, "predict") == 200
    assert "laptop" not in {k["name"] for k in _keys(keyed)}
    assert any(e.detail == "revoked laptop" for e in keyed.refresh()._record.events)


def test_an_expired_key_is_refused(keyed: Any) -> None:
    secret = keyed.create_key("brief", scopes=["predict"], expires_in=datetime.timedelta(seconds=3))
    expires = next(k for k in _keys(keyed) if k["name"] == "brief")["expires"]
    assert expires
    wait_for(lambda: _call(keyed, secret, "predict") == 401, 30, "the key to expire")
    keyed.revoke_key("brief")


def test_only_hashes_are_stored_and_other_processes_hold_no_key(keyed: Any) -> None:
    from jupyter_deploy.settings import Settings

    state = Settings.from_env().state_path
    stored = b"".join(p.read_bytes() for p in Path(state).parent.glob(Path(state).name + "*"))
    assert keyed.token.encode() not in stored
    code = ("import jupyter_deploy as jd; d = jd.get('keyed'); print(repr(d.token)); "
            "print(d.masked_token)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=os.environ.copy(), timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[:2] == ["None", "none in this kernel (dep.create_key)"]


def test_the_cli_and_the_magic_manage_keys(keyed: Any, capsys: Any) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from jupyter_deploy import cli

    assert cli.main(["--json", "keys", "keyed", "create", "ci", "--scopes", "predict"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["scopes"] == ["predict"] and _call(keyed, made["secret"], "predict") == 200
    assert cli.main(["keys", "keyed", "revoke", "ci"]) == 0
    assert _call(keyed, made["secret"], "predict") == 401
    assert cli.main(["keys", "keyed", "revoke", "ci"]) != 0  # one line, no traceback
    assert "has no key named 'ci'" in capsys.readouterr().err

    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext jupyter_deploy").raise_error()
    shell.run_cell("%deploy_key keyed create nb --scopes predict,feedback").raise_error()
    secret = shell.user_ns["nb_key"]
    shown = capsys.readouterr().out
    assert "nb_key" in shown and secret not in shown  # the cell's output is saved
    assert _call(keyed, secret, "predict") == 200
    listed = shell.run_cell("%deploy_key keyed list").result
    assert {k["name"] for k in listed} >= {"default", "nb"}
    shell.run_cell("%deploy_key keyed revoke nb").raise_error()
    assert _call(keyed, secret, "predict") == 401
