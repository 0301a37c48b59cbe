"""The Jupyter server extension behind the Deploy panel.

Loading it registers REST routes only; ray and bentoml are imported on the first request
that needs the cluster, so the server starts as fast as without the extension.
"""

from __future__ import annotations

from typing import Any


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from .handlers import NAMESPACE, setup_handlers

    setup_handlers(serverapp.web_app)
    serverapp.log.info("jupyter_deploy: REST routes under /%s/", NAMESPACE)
