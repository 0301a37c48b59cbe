"""What key checks and TLS cost: c=32 throughput, TLS on/off and 50 active keys vs 1.

``python bench/keys_tls.py [--seconds 5] [--out DIR]``. One run, two embedded clusters
one after the other (own JD_HOME, ports and, for TLS, a self-signed certificate made
here), each in a child process so that nothing of the first is left in the second:

* plain: deploy an iris LogisticRegression (one replica), warm it up for 2 s; wrk c=32,
  one row per request, with 1 key
  (the first), then with 50 (49 more created through ``dep.create_key``), twice each,
  in the order 1, 50, 50, 1 so that a drift of the machine's load over the run weighs
  on both sides alike;
* tls: the same deployment behind HTTPS (``JD_TLS_CERT``/``JD_TLS_KEY``), 1 key, twice.

Ratios: 50 keys / 1 key (target >= 0.98) and TLS / plain (target >= 0.85), from the
means of the paired runs.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from report import emit

ROW = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]})


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(pem))
    key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def phase(kind: str, seconds: float) -> dict[str, Any]:
    """In a child process: one cluster, one deployment, the wrk runs of ``kind``."""
    from loadgen import run_wrk
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import jupyter_deploy as jd

    x, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    jd.start_cluster()
    try:
        # One replica throughout: the autoscaler adding one mid-run would weigh more than
        # anything measured here.
        dep = jd.deploy(model, name="bench", sample=x, min_replicas=1, max_replicas=1,
                        progress=False)  # fmt: skip
        token = dep.token
        run_wrk(f"{dep.url}/predict", ROW, 32, 2, token)  # warm-up: connections, caches

        def rps() -> float:
            result = run_wrk(f"{dep.url}/predict", ROW, 32, seconds, token)
            if result.errors:
                raise SystemExit(f"{result.errors} failed requests in a {kind} run")
            return result.rps

        runs: dict[str, list[float]] = {"one_key": [rps()]}
        if kind == "plain":
            for i in range(49):
                dep.create_key(f"k{i}", scopes=["predict"])
            runs["fifty_keys"] = [rps(), rps()]
            for i in range(49):
                dep.revoke_key(f"k{i}")
        runs["one_key"].append(rps())
        return {"url": dep.url, **runs}
    finally:
        jd.stop_cluster(forget=True)


def _child(kind: str, seconds: float, base: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "JD_TLS"))}
    env.update(JD_HOME=str(base / f"home-{kind}"), BENTOML_HOME=str(base / "bentoml"),
               JD_RAY_PORT=os.environ.get("JD_RAY_PORT", "6595"),
               JD_HTTP_PORT=os.environ.get("JD_HTTP_PORT", "8595"),
               JD_REPLICA_PORTS=os.environ.get("JD_REPLICA_PORTS", "33600-33999"),
               RAY_USAGE_STATS_ENABLED="0")  # fmt: skip
    if kind == "tls":
        cert, key = _certificate(base)
        env.update(JD_TLS_CERT=str(cert), JD_TLS_KEY=str(key), SSL_CERT_FILE=str(cert))
    cmd = [sys.executable, __file__, "--phase", kind, "--seconds", str(seconds)]
    for attempt in (1, 2):  # a Ray head can fail to start on a busy machine: once more
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if not out.returncode and line is not None:
            return dict(json.loads(line.removeprefix("RESULT ")))
        print(f"{kind} phase failed (attempt {attempt}):\n{out.stderr[-1500:]}", file=sys.stderr)
    raise SystemExit(f"the {kind} phase failed twice")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--phase", choices=["plain", "tls"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:  # the child process of one phase
        print("RESULT", json.dumps(phase(args.phase, args.seconds)))
        return
    with tempfile.TemporaryDirectory(prefix="jd-bench-keys-") as tmp:
        plain = _child("plain", args.seconds, Path(tmp))
        tls = _child("tls", args.seconds, Path(tmp))
    mean = statistics.mean
    summary = {
        "plain_rps": mean(plain["one_key"]),
        "fifty_keys_rps": mean(plain["fifty_keys"]),
        "tls_rps": mean(tls["one_key"]),
        "fifty_over_one": mean(plain["fifty_keys"]) / mean(plain["one_key"]),
        "tls_over_plain": mean(tls["one_key"]) / mean(plain["one_key"]),
    }
    emit({"plain": plain, "tls": tls, "summary": summary}, args.out, "keys_tls.json")


if __name__ == "__main__":
    main()
