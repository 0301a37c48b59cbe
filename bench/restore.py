"""Restore time: cluster start -> all of 5 deployments answering, beside a cold start of one.

``python bench/restore.py [--rounds 2] [--out DIR]``. Each round, on a cluster of its own
(own JD_HOME, BENTOML_HOME and ports, stopped through its process session):

* cold: no cluster running, ``deploy()`` of one model -> its first 200 (head start,
  Serve start, Bento build, replica start);
* restore: 5 deployments live, ``stop_cluster()``, then ``start_cluster()`` -> all 5 answer
  at their live version with their old tokens.

Target: restore of 5 <= 1.5x the cold start of one, measured in the same round.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import httpx
from isolated import own_cluster
from report import emit, medians


def _answers(url: str, token: str, row: dict[str, float], version: int) -> bool:
    try:
        resp = httpx.post(f"{url}/predict", json={"instances": [row]},
                          headers={"Authorization": f"Bearer {token}"}, timeout=5)  # fmt: skip
    except httpx.HTTPError:
        return False
    return resp.status_code == 200 and resp.headers.get("x-model-version") == str(version)


def _wait_all(targets: list[tuple[str, str, int]], row: dict[str, float]) -> None:
    pending = list(targets)
    deadline = time.monotonic() + 300
    while pending and time.monotonic() < deadline:
        pending = [t for t in pending if not _answers(*t[:2], row, t[2])]
        time.sleep(0.05)
    if pending:
        raise SystemExit(f"not answering after 300 s: {[t[0] for t in pending]}")


def one_round(base: Path, i: int) -> dict[str, float]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import jupyter_deploy as jd

    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    row = x.iloc[0].to_dict()
    models = [LogisticRegression(C=c, max_iter=500).fit(x, y) for c in (0.1, 0.3, 1, 3, 10)]
    os.environ["JD_HOME"] = str(base / f"home-{i}")  # a fresh cluster and store each round
    started = time.monotonic()
    first = jd.deploy(models[0], name="m0", sample=x, progress=False)
    _wait_all([(first.url, first.token, 1)], row)
    cold = time.monotonic() - started
    deps = [first] + [jd.deploy(m, name=f"m{i}", sample=x, progress=False)
                      for i, m in enumerate(models[1:], 1)]  # fmt: skip
    targets = [(d.url, d.token or "", d.version or 0) for d in deps]
    jd.stop_cluster()
    started = time.monotonic()
    jd.start_cluster()
    _wait_all(targets, row)
    restore = time.monotonic() - started
    jd.stop_cluster(forget=True)
    return {"cold_one_s": cold, "restore_five_s": restore, "ratio": restore / cold}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    # One BentoML store for every round (BentoML reads its home once per process); each
    # round sets a JD_HOME of its own (a fresh cluster and store).
    tmp = own_cluster("restore", 6590, 8590, "33600-33999")
    rounds = []
    for i in range(args.rounds):
        result = one_round(Path(tmp.name), i)
        print(f"round {i + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items()),
              file=sys.stderr)  # fmt: skip
        rounds.append(result)
    tmp.cleanup()
    emit({"rounds": rounds, "median": medians(rounds)}, args.out, "restore.json")


if __name__ == "__main__":
    main()
