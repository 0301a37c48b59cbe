"""Container and KubeRay exports: the recipe, the manifest, and both serving for real.

This machine has no container engine, so the slow test plays the Dockerfile itself:
its instructions, read with ``dockerfile-parse``, are carried out under a folder that
stands for the image's root (``ENV`` paths and ``COPY`` destinations moved under it,
``RUN pip install`` into a fresh virtual environment on pip's cache), and its
``ENTRYPOINT`` is run from there on loopback ports. The KubeRay test deploys the very
``serveConfigV2`` to the session's cluster with Ray's own config path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from jupyter_deploy.control.keys import SCOPES, Grant, digest
from jupyter_deploy.errors import ClusterError, ExportError
from jupyter_deploy.export import export
from jupyter_deploy.export.serve_config import serve_config
from jupyter_deploy.replica.secret import TOKEN_ENV, TOKEN_FILE_ENV, token_hash
from jupyter_deploy.rollout.target import Target, deployment_options, replica_settings
from jupyter_deploy.spec import Autoscaling, DeploymentSpec, Resources

TOKEN = "s3cret-token-of-the-test"
KEYS = (Grant(digest(TOKEN), "default", SCOPES),)  # what the store hands a local target
SPEC = DeploymentSpec("churn", Autoscaling(min_replicas=1, max_replicas=3),
                      Resources(num_cpus=1.5, custom={"worker_node": 0.01}))  # fmt: skip


def _schema(config: dict[str, Any]) -> Any:
    from ray.serve.schema import ServeDeploySchema

    return ServeDeploySchema.model_validate(config)


@pytest.fixture(scope="module")
def bento_tag(iris_pipe: Any, iris: Any) -> str:
    from jupyter_deploy.build.capture import capture
    from jupyter_deploy.build.packaging import build_bento

    return str(build_bento(capture(iris_pipe, sample=iris[0]), SPEC).tag)


# -- fast: what is written ---------------------------------------------------------------
def test_serve_config_is_the_local_deployments_desired_state() -> None:
    target = Target(SPEC, 3, "churn:abc", KEYS)
    config = serve_config(target)
    app = _schema(config).applications[0]
    assert (app.name, app.route_prefix) == ("churn", "/churn")
    assert app.import_path == "jupyter_deploy.replica.app:application"
    (dep,) = config["applications"][0]["deployments"]
    keyless = dataclasses.replace(target, keys=())
    assert {**dep} == {"name": "model", **deployment_options(keyless, SPEC.autoscaling)}
    assert dep["user_config"] == {"version": 3, "bento_tag": "churn:abc"}  # no key hash
    assert "keys" in target.serve_target().to_config()  # which a local replica gets
    settings = dict(replica_settings(target))
    assert settings["auth"] is True
    assert app.args == {**settings, "token_sha256": None, "token_secret": True,
                        "standalone": True, "log_sample_rate": 0.0}  # fmt: skip
    text = json.dumps(config)
    assert TOKEN not in text and hashlib.sha256(TOKEN.encode()).hexdigest() not in text


def test_rayservice_names_the_secret_and_sizes_the_cluster(bento_tag: str, tmp_path: Path) -> None:
    target = Target(SPEC, 3, bento_tag, KEYS)
    path = export(bento_tag, "kuberay", tmp_path / "churn.yaml", target=target)
    text = Path(path).read_text()
    assert TOKEN not in text and hashlib.sha256(TOKEN.encode()).hexdigest() not in text
    doc = yaml.safe_load(text)
    assert (doc["apiVersion"], doc["kind"]) == ("ray.io/v1", "RayService")
    config = yaml.safe_load(doc["spec"]["serveConfigV2"])
    assert config == serve_config(target)
    _schema(config)
    cluster = doc["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == __import__("ray").__version__
    assert cluster["authOptions"] == {"mode": "token"}
    (group,) = cluster["workerGroupSpecs"]
    assert (group["minReplicas"], group["maxReplicas"]) == (1, 3)
    assert json.loads(group["rayStartParams"]["resources"]) == {"worker_node": 0.01}
    (worker,) = group["template"]["spec"]["containers"]
    assert worker["image"] == "churn:v3"  # the container export's tag
    assert worker["resources"]["requests"]["cpu"] == "2"  # 1.5 CPUs of one replica
    (head,) = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    for container in (head, worker):
        env = {e["name"]: e for e in container["env"]}
        ref = env[TOKEN_ENV]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "churn-token", "key": "sha256"}
    other = export(bento_tag, "kuberay", tmp_path / "b.yaml", target=target,
                   image="registry.example/churn:3", secret="keys")  # fmt: skip
    assert "image: registry.example/churn:3" in Path(other).read_text()
    no_auth = Target(DeploymentSpec("open", auth=False), 1, bento_tag, KEYS)
    assert TOKEN_ENV not in Path(export(bento_tag, "kuberay", tmp_path / "o.yaml",
                                        target=no_auth)).read_text()  # fmt: skip


def test_dockerfile_is_pinned_non_root_and_lints_clean(bento_tag: str, tmp_path: Path) -> None:
    from dockerfile_parse import DockerfileParser

    target = Target(SPEC, 3, bento_tag, KEYS)
    ctx = Path(export(bento_tag, "docker", tmp_path / "ctx", target=target))
    parsed = DockerfileParser(str(ctx / "Dockerfile"))
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", parsed.baseimage)
    steps = [(s["instruction"], s["value"]) for s in parsed.structure]
    user = [v for i, v in steps if i == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root")
    health = next(v for i, v in steps if i == "HEALTHCHECK")
    assert "healthcheck.py" in health and "/livez" in (ctx / "healthcheck.py").read_text()
    bento = yaml.safe_load((ctx / "bento" / "bento.yaml").read_text())
    assert f"{bento['name']}:{bento['version']}" == bento_tag
    assert (ctx / "bento" / "models").is_dir()  # the model files travel with it
    requirements = ctx / "bento" / "env" / "python" / "requirements.txt"
    assert (ctx / "requirements.txt").read_text() == requirements.read_text()
    assert "ray[serve]==" in (ctx / "serve-requirements.txt").read_text()
    assert yaml.safe_load((ctx / "serve_config.yaml").read_text()) == serve_config(target)
    for path in ctx.rglob("*"):
        if path.is_file() and path.suffix != ".pkl":
            assert TOKEN.encode() not in path.read_bytes(), path
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    lint = subprocess.run([hadolint, "--failure-threshold", "info", str(ctx / "Dockerfile")],
                          capture_output=True, text=True)  # fmt: skip
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_exports_refuse_without_a_deployment_or_over_a_file(bento_tag: str,
                                                            tmp_path: Path) -> None:  # fmt: skip
    target = Target(SPEC, 3, bento_tag, KEYS)
    with pytest.raises(ExportError, match=r"Deployment\.export"):
        export(bento_tag, "docker", tmp_path / "ctx")
    (tmp_path / "taken").mkdir()
    with pytest.raises(ExportError, match="exists"):
        export(bento_tag, "docker", tmp_path / "taken", target=target)
    with pytest.raises(ExportError, match="does not take"):
        export(bento_tag, "kuberay", tmp_path / "k.yaml", target=target, quantize=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_token_hash_comes_from_the_secret_and_fails_closed(tmp_path: Path,
                                                           monkeypatch: Any) -> None:  # fmt: skip
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    exported = {"name": "churn", "token_sha256": None, "token_secret": True}
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.setenv(TOKEN_FILE_ENV, str(tmp_path / "missing"))
    with pytest.raises(ClusterError, match=TOKEN_ENV):
        token_hash(exported)
    (tmp_path / "sha").write_text(digest + "\n")
    monkeypatch.setenv(TOKEN_FILE_ENV, str(tmp_path / "sha"))
    assert token_hash(exported) == digest
    monkeypatch.setenv(TOKEN_ENV, "not-a-hash")
    with pytest.raises(ClusterError):
        token_hash(exported)
    assert token_hash({"token_sha256": digest}) == digest
    assert token_hash({"token_sha256": None}) is None  # auth off


# -- on the cluster: the exports serve like the live deployment ----------------------------
@pytest.fixture(scope="module")
def live(cluster: Any, iris_pipe: Any, iris: Any,
         tmp_path_factory: Any) -> dict[str, Any]:  # fmt: skip
    """A live deployment, its answers, and both exports made while it is live."""
    import jupyter_deploy as jd

    dep = jd.deploy(iris_pipe, name="portable", sample=iris[0], progress=False)
    rows = iris[0].sample(25, random_state=1)
    folder = tmp_path_factory.mktemp("portable")
    return {
        "dep": dep,
        "token": dep.token,
        "rows": json.loads(rows.to_json(orient="records")),
        "expected": dep.predict(rows).tolist(),
        "docker": dep.export("docker", str(folder / "build" / "portable")),
        "kuberay": dep.export(
            "kuberay", str(folder / "portable.yaml"), image="registry.example/portable:1"
        ),
    }


def _predict(url: str, token: str | None, rows: list[dict[str, Any]]) -> Any:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    try:
        answer = httpx.post(f"{url}/predict", json={"instances": rows}, headers=headers,
                            timeout=30)  # fmt: skip
    except httpx.HTTPError:
        return None
    return answer.json()["predictions"] if answer.status_code == 200 else None


class Image:
    """A Dockerfile carried out on this machine under ``root``, standing for ``/``."""

    def __init__(self, context: Path, root: Path) -> None:
        from dockerfile_parse import DockerfileParser

        self.context, self.root, self.cwd = context, root, root
        self.parsed = DockerfileParser(str(context / "Dockerfile"))
        self.venv = root / "venv"
        self.env: dict[str, str] = {}

    def path(self, value: str) -> Path:
        return self.root / value.lstrip("/") if value.startswith("/") else self.cwd / value

    def build(self) -> None:
        base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        subprocess.run([str(base), "-m", "venv", str(self.venv)], check=True)
        for step in self.parsed.structure:
            getattr(self, "_" + step["instruction"].lower(), lambda _v: None)(step["value"])

    def _env(self, _value: str) -> None:
        self.env = {k: str(self.path(v)) if v.startswith("/") else v
                    for k, v in self.parsed.envs.items()}  # fmt: skip

    def _workdir(self, value: str) -> None:
        self.cwd = self.path(value)
        self.cwd.mkdir(parents=True, exist_ok=True)

    def _copy(self, value: str) -> None:
        *sources, dest = [a for a in value.split() if not a.startswith("--")]
        target = self.path(dest)
        for src in sources:
            into = target / src if dest.endswith("/") or len(sources) > 1 else target
            into.parent.mkdir(parents=True, exist_ok=True)
            if (self.context / src).is_dir():
                shutil.copytree(self.context / src, into)
            else:
                shutil.copy2(self.context / src, into)

    def _run(self, value: str) -> None:
        if not value.startswith("python -m pip install"):
            return  # groupadd/useradd: the test runs as the current user
        # The one change: pip may use its cache (the image build must not keep one).
        args = [a for a in value.split()[1:] if a != "--no-cache-dir"]
        subprocess.run([str(self.venv / "bin" / "python"), *args], cwd=self.cwd, check=True,
                       env={**os.environ, **self.env})  # fmt: skip

    def start(self, *args: str, **env: str) -> subprocess.Popen:
        (entry,) = json.loads(next(s["value"] for s in self.parsed.structure
                                   if s["instruction"] == "ENTRYPOINT"))  # fmt: skip
        path = f"{self.venv / 'bin'}:/usr/bin:/bin"
        full = {"PATH": path, "HOME": str(self.root / "home" / "jd"), **self.env, **env}
        log = open(self.root / f"run{len(args)}.log", "w")  # noqa: SIM115 - the process owns it
        return subprocess.Popen(["sh", str(self.path(entry)), *args], env=full, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


@pytest.mark.slow
@pytest.mark.cluster
def test_container_recipe_serves_like_the_deployment(live: dict[str, Any],
                                                     tmp_path: Path) -> None:  # fmt: skip
    from conftest import free_port, wait_for

    image = Image(Path(live["docker"]), tmp_path / "root")
    image.build()
    token, rows = live["token"], live["rows"]
    port = free_port()
    digest = hashlib.sha256(token.encode()).hexdigest()
    proc = image.start("--num-cpus", "1", JD_HOST="127.0.0.1", JD_PORT=str(port),
                       JD_TOKEN_SHA256=digest)  # fmt: skip
    url = f"http://127.0.0.1:{port}/portable"
    try:
        answer = wait_for(lambda: proc.poll() is not None or _predict(url, token, rows), 300,
                          "the container entrypoint to serve")  # fmt: skip
        assert proc.poll() is None, (tmp_path / "root" / "run2.log").read_text()[-3000:]
        assert answer == live["expected"]
        assert httpx.get(f"{url}/livez", timeout=10).text == "ok"  # probes need no key
        assert _predict(url, None, rows) is None and _predict(url, "wrong", rows) is None
        health = subprocess.run([str(image.venv / "bin" / "python"),
                                 str(image.path("/opt/jd/healthcheck.py"))],
                                env={"JD_PORT": str(port)})  # fmt: skip
        assert health.returncode == 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    plain_port = free_port()
    proc = image.start("--plain", JD_HOST="127.0.0.1", JD_PORT=str(plain_port))
    url = f"http://127.0.0.1:{plain_port}"
    try:
        answer = wait_for(lambda: proc.poll() is not None or _predict(url, None, rows), 180,
                          "bentoml serve of the image's Bento")  # fmt: skip
        assert proc.poll() is None, (tmp_path / "root" / "run1.log").read_text()[-3000:]
        assert answer == live["expected"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


@pytest.mark.cluster
def test_kuberay_serve_config_serves_on_the_local_cluster(live: dict[str, Any]) -> None:
    from conftest import wait_for
    from ray import serve

    from jupyter_deploy import _ray

    manifest = yaml.safe_load(Path(live["kuberay"]).read_text())
    config = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    # What the pods' secretKeyRef gives every Ray process in Kubernetes:
    digest = hashlib.sha256(live["token"].encode()).hexdigest()
    config["applications"][0]["runtime_env"] = {"env_vars": {TOKEN_ENV: digest}}
    url = live["dep"].url
    from jupyter_deploy import cli  # the shell's front door writes the same two exports

    out = Path(live["kuberay"]).parent / "cli"
    assert cli.main(["export", "portable", str(out / "p.yaml"), "--format", "kuberay",
                     "--image", "registry.example/portable:1"]) == 0  # fmt: skip
    assert (out / "p.yaml").read_text() == Path(live["kuberay"]).read_text()
    assert cli.main(["export", "portable", str(out / "ctx"), "--format", "docker"]) == 0
    assert (out / "ctx" / "Dockerfile").read_text() == (Path(live["docker"]) / "Dockerfile"
                                                        ).read_text()  # fmt: skip
    assert cli.main(["export", "portable", str(out / "x"), "--format", "docker",
                     "--image", "i"]) == 1  # a kuberay option  # fmt: skip
    live["dep"].delete()  # frees the application name and the route
    _ray.deploy_config(config)
    try:
        answer = wait_for(lambda: _predict(url, live["token"], live["rows"]), 180,
                          "the KubeRay serve config to serve")  # fmt: skip
        assert answer == live["expected"]
        assert _predict(url, "wrong-token", live["rows"]) is None
        assert httpx.post(f"{url}/predict", json={"instances": live["rows"]},
                          timeout=30).status_code == 401  # fmt: skip
    finally:
        serve.delete("portable", _blocking=True)
