"""binder/ installs into a fresh virtual environment, and the quickstart runs there.

It does what Binder's repo2docker does: ``pip install -r binder/requirements.txt``, then
``binder/postBuild`` from the repository root, then every command through ``binder/start``
(which sizes the embedded Ray for Binder's machines). The quickstart then runs headless in
that environment, on an embedded cluster of its own that is stopped afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent
BINDER = ROOT / "binder"


def _sh(args: list[str], env: dict[str, str], timeout: float, cwd: Path = ROOT) -> str:
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip
    tail = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{tail}"
    return done.stdout


def test_binder_environment_installs_and_runs_the_quickstart(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JD_", "RAY_", "BENTOML_"))}
    env.update(PATH=f"{venv / 'bin'}:{env['PATH']}", VIRTUAL_ENV=str(venv),
               PIP_DISABLE_PIP_VERSION_CHECK="1")  # fmt: skip
    # The pip cache of the machine is used (a fresh venv, not a fresh download).
    _sh([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r",
         str(BINDER / "requirements.txt")], env, timeout=1200)  # fmt: skip
    out = _sh(["bash", str(BINDER / "postBuild")], env, timeout=600)
    assert "jupyter_deploy 0." in out

    # Its own cluster: homes and ports apart from the test session's.
    env.update(JD_HOME=str(tmp_path / "home"), BENTOML_HOME=str(tmp_path / "bentoml"),
               JD_RAY_PORT=str(free_port()), JD_HTTP_PORT=str(free_port()),
               JD_REPLICA_PORTS="34000-34099")  # fmt: skip
    start = [str(BINDER / "start")]
    out_nb = tmp_path / "quickstart.out.ipynb"
    try:
        _sh([*start, "papermill", str(ROOT / "notebooks" / "quickstart.ipynb"), str(out_nb),
             "-p", "name", "binder-qs", "-p", "requests", "5", "--cwd", str(tmp_path)],
            env, timeout=600, cwd=tmp_path)  # fmt: skip
        probe = ("import json, ray, jupyter_deploy as jd; jd.start_cluster();"
                 "print(json.dumps(ray.cluster_resources()))")  # fmt: skip
        resources = json.loads(_sh([*start, "python", "-c", probe], env, 120, tmp_path)
                               .strip().splitlines()[-1])  # fmt: skip
    finally:
        subprocess.run([*start, "jupyter-deploy", "cluster", "stop"], env=env, timeout=120,
                       capture_output=True)  # fmt: skip
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for c in nbformat.read(out_nb, as_version=4).cells
        for o in c.get("outputs", [])
    )
    assert "predictions match the kernel's model: True" in text
    assert int(text.split("requests counted: ")[1].split(",")[0]) >= 5 + 1
    # binder/start sized the head: 2 CPUs, a 200 MB object store.
    assert resources["CPU"] == 2
    assert resources["object_store_memory"] == pytest.approx(200 * 2**20, rel=0.01)
