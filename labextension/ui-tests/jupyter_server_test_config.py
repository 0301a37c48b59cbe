"""Jupyter server of the UI tests: Galata's test settings, on our own port and 127.0.0.1.

Token-less and XSRF-free ONLY here (Galata's helpers need it); never use it elsewhere.
"""

import os

from jupyterlab.galata import configure_jupyter_server

c = get_config()  # type: ignore[name-defined]  # noqa: F821 (provided by traitlets)
configure_jupyter_server(c)
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = int(os.environ.get("JD_UI_PORT", "8890"))
c.ServerApp.allow_root = True
c.ServerApp.root_dir = os.environ["JD_UI_ROOT"]
