"""The README's demo: train a model, deploy it on the embedded local Ray, query it.

Run it with ``bash scripts/demo.sh`` (which sets up the virtualenv first). The deployment
keeps running after the script ends; stop everything with ``jupyter-deploy cluster stop``.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import httpx
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import jupyter_deploy


def main() -> None:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, _ = train_test_split(x, y, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, y_train)
    print(f"trained {type(model).__name__} on {len(x_train)} rows")

    started = time.perf_counter()
    dep = jupyter_deploy.deploy(model, name="cancer", sample=x_train, max_replicas=2)
    took = time.perf_counter() - started
    print(f"deployed {dep.name} v{dep.version} at {dep.url} in {took:.1f} s")

    # Query it over plain HTTP, as any client would. The key: the deployment's first one if
    # this process made the deployment; after a restart (a new version of an existing
    # deployment) this process holds none, and makes one for itself, for the predict route.
    token = dep.token or dep.create_key(
        f"demo-{uuid.uuid4().hex[:6]}", scopes=["predict"], expires_in=timedelta(days=1)
    )
    rows = json.loads(x_test.head(5).to_json(orient="records"))
    resp = httpx.post(
        f"{dep.url}/predict",
        json={"instances": rows},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    served = resp.json()["predictions"]
    local = model.predict(x_test.head(5)).tolist()
    print(f"HTTP {resp.status_code}: predictions {served} (in-kernel model: {local})")
    if served != local:
        raise SystemExit("the endpoint disagrees with the in-kernel model")
    print(f"\ntry it yourself:\n  {dep.curl()}")
    print("stop everything with:  .venv/bin/jupyter-deploy cluster stop")


if __name__ == "__main__":
    main()
