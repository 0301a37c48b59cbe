"""TLS for the endpoints: HAProxy terminates it with the user's certificate and key.

Ray Serve's HAProxy mode has no TLS option of its own (docs/architecture.md), but HAProxy
itself does (``bind ... ssl crt <pem>``). With ``JD_TLS_CERT`` and ``JD_TLS_KEY`` set, the
certificate and key are joined into one owner-only PEM in HAProxy's private runtime
folder (the format ``crt`` reads), and the ingress wrapper adds ``ssl crt`` to the
endpoints' ``bind`` line of the config Serve generates. Only that listener changes: the
replicas behind HAProxy stay on loopback and plain HTTP, so nothing else pays for it.
"""

from __future__ import annotations

from pathlib import Path

from .. import private
from ..errors import ClusterError
from ..settings import Settings


def enabled(settings: Settings) -> bool:
    """Whether the endpoints serve HTTPS; both files must be given, or neither."""
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ClusterError("Set both JD_TLS_CERT and JD_TLS_KEY (PEM files), or neither.")
    return bool(settings.tls_cert)


def bundle(settings: Settings, folder: Path) -> Path:
    """The certificate and key as one owner-only PEM in ``folder``, rewritten each start."""
    parts = []
    for var, name in (("JD_TLS_CERT", settings.tls_cert), ("JD_TLS_KEY", settings.tls_key)):
        try:
            parts.append(Path(name).expanduser().read_text().strip() + "\n")
        except OSError as exc:
            raise ClusterError(
                f"{var}={name} cannot be read ({exc.strerror}); fix the path."
            ) from None
    pem = folder / "tls.pem"
    pem.unlink(missing_ok=True)
    private.create_file(pem, "".join(parts))
    return pem


def bind_edit(settings: Settings, pem: Path) -> str:
    """A ``sed -E`` expression adding ``ssl crt`` to the endpoints' bind line."""
    return rf"s#^([[:space:]]*bind [^ ]*:{settings.http_port_int})$#\1 ssl crt {pem}#"


def scheme(settings: Settings) -> str:
    """URL scheme clients use for the embedded cluster's endpoints."""
    return "https" if enabled(settings) else "http"
