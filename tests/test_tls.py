"""HTTPS endpoints: HAProxy terminates TLS with JD_TLS_CERT/JD_TLS_KEY (own cluster)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

DRIVER = """
import json, ssl, httpx
import jupyter_deploy as jd
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
X, y = load_iris(return_X_y=True, as_frame=True)
model = DecisionTreeClassifier(random_state=0).fit(X, y)
try:
    dep = jd.deploy(model, name="tls", sample=X, progress=False)
    served = dep.predict(X.head(3)).tolist()  # verified against SSL_CERT_FILE only
    port = int(dep.url.rsplit(":", 1)[1].split("/")[0])
    try:
        plain = httpx.get(dep.url.replace("https:", "http:") + "/readyz", timeout=10).status_code
    except httpx.HTTPError as exc:
        plain = type(exc).__name__
    from argparse import Namespace
    from jupyter_deploy import cli
    from jupyter_deploy.server import operations
    shown = [cli._cluster(Namespace(action="status"))["http"], operations.cluster_status()["http"]]
    print(json.dumps({"url": dep.url, "served": served, "plain": plain, "shown": shown,
                      "local": model.predict(X.head(3)).tolist(),
                      "cert": ssl.get_server_certificate(("127.0.0.1", port))}))
finally:
    jd.stop_cluster()
"""


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a 127.0.0.1 certificate it signed: (ca, cert, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def make(name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: Any,
             ca: bool) -> x509.Certificate:  # fmt: skip
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )  # fmt: skip
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jd test CA")])
    ca = make("jd test CA", ca_key, ca_name, ca_key, ca=True)
    cert = make("127.0.0.1", key, ca_name, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(pem))
    paths[1].write_bytes(cert.public_bytes(pem))
    paths[2].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return paths


def test_endpoints_serve_https_with_the_given_certificate(tmp_path: Path) -> None:
    ca, cert, key = _certificates(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "JD_"))}
    env.update(
        JD_HOME=str(tmp_path / "home"), BENTOML_HOME=str(tmp_path / "bentoml"),
        # Fixed ports below Ray's worker range (10002-19999) and the ephemeral one: a random
        # free HTTP port's side ports (+404, +500, +1101, +1500) could be a worker's.
        JD_RAY_PORT="6780", JD_HTTP_PORT="7780", JD_NUM_CPUS="2",
        JD_REPLICA_PORTS="35400-35499", JD_TLS_CERT=str(cert), JD_TLS_KEY=str(key),
        SSL_CERT_FILE=str(ca), RAY_USAGE_STATS_ENABLED="0",
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
    )  # fmt: skip
    out = subprocess.run([sys.executable, "-c", DRIVER], env=env, capture_output=True,
                         text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["url"].startswith("https://127.0.0.1:")
    assert seen["shown"] == [seen["url"].rsplit("/", 1)[0]] * 2  # the CLI and panel say https
    assert seen["served"] == seen["local"]
    assert seen["plain"] != 200  # plain HTTP on the TLS port is not served
    assert seen["cert"].strip() == cert.read_text().strip()
    from jupyter_deploy.control.ingress import runtime_dir
    from jupyter_deploy.settings import Settings

    pem = runtime_dir(Settings.from_env(env)) / "tls.pem"  # the key, joined for HAProxy
    assert (pem.stat().st_mode & 0o777) == 0o600
