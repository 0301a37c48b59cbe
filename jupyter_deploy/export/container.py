"""A container build context for one version of a deployment (``export("docker")``).

The folder holds a ``Dockerfile``, the unpacked Bento, jupyter_deploy's own source, the
Serve config (:mod:`.serve_config`), an entrypoint and a health check. ``docker build``
of it gives an image that serves the Bento on Ray Serve with jupyter_deploy's replica
(same routes, same bearer-token check, the hash from a secret at run time), or with
``--plain``, on ``bentoml serve`` alone.

Where we diverge from BentoML's own ``bentoml containerize`` (its generated
``env/docker/Dockerfile``, kept inside every Bento):

- the base image is an exact tag (``python:3.11.7-slim-bookworm``, the exporting
  kernel's Python), not ``python:3.11-slim``, so a rebuild next month gets the same
  interpreter;
- ``pip install`` of the Bento's exact ``requirements.txt`` plus ``ray[serve]`` at the
  exporting cluster's version, not ``uv`` into a second virtual environment and no
  ``build-essential``/``git`` layer: every pin ships as a wheel for linux x86_64, and
  plain pip is what the test reproduces step by step on a machine without a container
  engine (``tests/test_portable.py``);
- jupyter_deploy's source is copied, not installed with its dependencies: a serving
  image needs Ray and the Bento's stack, not JupyterLab or papermill.

Like :mod:`.files`, the folder is written under a hidden name and renamed at the end.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from ..errors import ExportError
from ..rollout.target import Target
from .serve_config import SERVE_PORT, serve_config

PLAIN_PORT = 3000  # bentoml serve's default
APP_DIR = "/opt/jd"  # jupyter_deploy, the Serve config and the scripts
HOME = "/home/jd"
UID = 10001  # not root, and no UID a host account is likely to have
_PACKAGE = Path(__file__).resolve().parent.parent

DOCKERFILE = """\
# syntax=docker/dockerfile:1
# {name} v{version} (Bento {bento_tag}), exported by jupyter_deploy {jd_version}.
#   docker build -t {tag} .
#   docker run -p {serve_port}:{serve_port} -e JD_TOKEN_SHA256=<token sha256> {tag}
# Why it differs from `bentoml containerize`: jupyter_deploy/export/container.py.
FROM {base_image}

ENV PYTHONUNBUFFERED=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    BENTOML_HOME={home}/bentoml \\
    PYTHONPATH={app_dir} \\
    RAY_USAGE_STATS_ENABLED=0

RUN groupadd --gid {uid} jd && useradd --uid {uid} --gid jd --no-log-init --create-home jd

WORKDIR {app_dir}
COPY requirements.txt serve-requirements.txt ./
RUN python -m pip install --no-cache-dir -r requirements.txt -r serve-requirements.txt

# The unpacked Bento where the replica looks first (its node-local cache): no registry.
COPY --chown=jd:jd bento {home}/bentoml/jupyter_deploy/bentos/{bento_name}/{bento_version}
COPY jupyter_deploy ./jupyter_deploy
COPY serve_config.yaml entrypoint.sh healthcheck.py ./

# Numeric, so Kubernetes' runAsNonRoot can check it.
USER {uid}:{uid}
EXPOSE {serve_port} {plain_port}
# /livez of the replica, which answers without a key (an older replica's 401 with a Bearer
# challenge also says alive).
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \\
    CMD ["python", "{app_dir}/healthcheck.py"]
ENTRYPOINT ["{app_dir}/entrypoint.sh"]
"""

ENTRYPOINT = """\
#!/bin/sh
# Serve the Bento on Ray Serve with jupyter_deploy's replica; `--plain`: bentoml serve.
# The token's SHA-256 comes from $JD_TOKEN_SHA256 or the file $JD_TOKEN_SHA256_FILE
# (default /run/secrets/jd-token-sha256); it is never part of the image.
set -eu
exec python -m jupyter_deploy.export.entrypoint --config "$(dirname "$0")/serve_config.yaml" "$@"
"""

HEALTHCHECK = """\
\"\"\"Exit 0 when the replica answers /livez (200; an older one's 401 Bearer challenge too).\"\"\"
import os
import sys
import urllib.error
import urllib.request

URLS = [
    "http://127.0.0.1:%s{route}/livez" % os.environ.get("JD_PORT", "{serve_port}"),
    "http://127.0.0.1:%s/livez" % os.environ.get("JD_PORT", "{plain_port}"),  # --plain
]
for url in URLS:
    try:
        urllib.request.urlopen(url, timeout=3)
        sys.exit(0)
    except urllib.error.HTTPError as err:
        if err.code == 401 and err.headers.get("www-authenticate") == "Bearer":
            sys.exit(0)
    except OSError:
        pass
sys.exit(1)
"""

DOCKERIGNORE = "**/__pycache__\n**/*.pyc\n"


def image_tag(target: Target) -> str:
    """The tag the context's README builds with, and the KubeRay export's default image."""
    return f"{target.spec.name}:v{target.version}"


def base_image() -> str:
    """The exact tag of the exporting kernel's Python (Debian 12 slim)."""
    major, minor, micro = sys.version_info[:3]
    return f"python:{major}.{minor}.{micro}-slim-bookworm"


def serve_requirements() -> str:
    """What the replica needs beyond the Bento: Ray Serve at this cluster's exact version."""
    import ray

    return f"ray[serve]=={ray.__version__}\n"


def _unpack_bento(tag: str, folder: Path) -> None:
    """The Bento with its model as ``folder/bento``: the store's copy holds no model files."""
    import tarfile

    import bentoml

    archive = folder / "bento.tar"
    bentoml.bentos.export_bento(tag, str(archive))
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "bento", filter="data")
    archive.unlink()


def export_docker(target: Target, path: str | Path, base: str | None = None) -> str:
    """Write the build context of ``target`` into the new folder ``path``; return it."""
    import bentoml
    import yaml
    from bentoml.exceptions import NotFound

    from .._version import __version__

    out = Path(path)
    if out.exists():
        raise ExportError(f"{out} exists; remove it or choose another folder.")
    try:
        bento_dir = Path(bentoml.bentos.get(target.bento_tag).path)
    except NotFound:
        raise ExportError(
            f"Bento {target.bento_tag} is not in the local BentoML store; export from the "
            "machine that built it."
        ) from None
    bento_name, bento_version = target.bento_tag.split(":")
    values = {
        "name": target.spec.name, "version": target.version, "bento_tag": target.bento_tag,
        "jd_version": __version__, "base_image": base or base_image(), "home": HOME,
        "app_dir": APP_DIR, "bento_name": bento_name, "bento_version": bento_version,
        "serve_port": SERVE_PORT, "plain_port": PLAIN_PORT, "route": target.spec.route,
        "tag": image_tag(target), "uid": UID,
    }  # fmt: skip
    config = serve_config(target)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        _unpack_bento(target.bento_tag, tmp)
        shutil.copy(bento_dir / "env" / "python" / "requirements.txt", tmp / "requirements.txt")
        skip = shutil.ignore_patterns("__pycache__", "*.pyc", "labextension")
        shutil.copytree(_PACKAGE, tmp / "jupyter_deploy", ignore=skip)
        (tmp / "serve-requirements.txt").write_text(serve_requirements())
        (tmp / "serve_config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        (tmp / "Dockerfile").write_text(DOCKERFILE.format(**values))
        (tmp / ".dockerignore").write_text(DOCKERIGNORE)
        (tmp / "healthcheck.py").write_text(HEALTHCHECK.format(**values))
        entry = tmp / "entrypoint.sh"
        entry.write_text(ENTRYPOINT.format(**values))
        entry.chmod(0o755)
        tmp.chmod(0o755)  # mkdtemp made it private
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return str(out)
