"""The container's main process: a one-node Ray with the exported Serve config applied.

``python -m jupyter_deploy.export.entrypoint --config serve_config.yaml`` starts Ray in
this process, applies the config exactly as KubeRay applies ``serveConfigV2``
(:func:`jupyter_deploy._ray.deploy_config`), waits until the application runs, and stays
in the foreground until SIGTERM (``docker stop``). ``--plain`` serves the same Bento
with ``bentoml serve`` instead, for a BentoML-only comparison or when Ray is not wanted.

Only Serve's HTTP port (``--host``, ``--port``; ``JD_HOST``, ``JD_PORT``) is meant to be
published. Ray's GCS and raylet listen on every interface of the container's own network
namespace (Ray 2.60 has no bind-address setting for them; ``--node-ip-address`` does not
restrict them), behind Ray's token authentication, which 2.60 turns on by default.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 300.0  # a cold Ray head plus the first replica on a small machine


def _bento_dir(config: dict[str, Any]) -> Path:
    from ..replica.loaded import bento_cache_root

    tag = config["applications"][0]["deployments"][0]["user_config"]["bento_tag"]
    name, version = tag.split(":")
    return bento_cache_root() / name / version


def _plain(config: dict[str, Any], host: str, port: int) -> None:
    bento = str(_bento_dir(config))
    os.execvp("bentoml", ["bentoml", "serve", bento, "--host", host, "--port", str(port)])


def _wait_running(name: str) -> None:
    from ray import serve

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        app = serve.status().applications.get(name)
        status = str(getattr(app.status, "value", app.status)) if app else "NOT_STARTED"
        if status == "RUNNING":
            return
        if status == "DEPLOY_FAILED":
            sys.exit(f"{name} failed to start: {app.message if app else ''}")
        time.sleep(0.5)
    sys.exit(f"{name} did not start within {READY_TIMEOUT_S:.0f} s")


def serve_config_file(path: Path, host: str, port: int, num_cpus: int | None) -> None:
    """Start Ray here, apply the Serve config at ``path``, block until SIGTERM or SIGINT."""
    import ray
    import yaml

    from .. import _ray

    config = yaml.safe_load(path.read_text())
    config["http_options"].update(host=host, port=port)
    app = config["applications"][0]
    # address="local": a new Ray here, never one another process left in /tmp/ray.
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
             _node_ip_address="127.0.0.1",
             namespace=_ray.NAMESPACE, configure_logging=False)  # fmt: skip
    _ray.deploy_config(config)
    _wait_running(app["name"])
    print(f"serving {app['name']} at http://{host}:{port}{app['route_prefix']}", flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    while not stop:
        time.sleep(0.5)
    from ray import serve

    serve.shutdown()
    ray.shutdown()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="entrypoint", description=__doc__.split("\n")[0])
    p.add_argument("--config", default="/opt/jd/serve_config.yaml")
    p.add_argument("--plain", action="store_true", help="serve with bentoml serve instead")
    p.add_argument("--host", default=os.environ.get("JD_HOST", "0.0.0.0"))
    p.add_argument("--port", type=int, default=int(os.environ.get("JD_PORT", "0")) or None,
                   help="default 8000 (Ray Serve) or 3000 (--plain)")  # fmt: skip
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs Ray may use (default all)")
    args = p.parse_args(argv)
    path = Path(args.config)
    if args.plain:
        import yaml

        _plain(yaml.safe_load(path.read_text()), args.host, args.port or 3000)
    serve_config_file(path, args.host, args.port or 8000, args.num_cpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
