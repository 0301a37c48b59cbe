"""A forest's ``predict`` under a replica's warning filters, as imported and compacted.

``python bench/filters.py [--rounds 5] [--calls 60]``

scikit-learn re-adds every warning filter once per tree (``sklearn.utils.parallel``), so
a 200-tree ``predict`` costs more with every filter the process holds. This imports what
a replica imports (Ray Serve, BentoML, SciPy, the replica's module), then times the peer
comparison's forest on one row in one process, no Ray, alternating per round between
that filter list and its compaction (``jupyter_deploy.replica.warning_filters``), and
between them and the filters of a FastAPI worker serving the same pickle (Python's,
NumPy's and SciPy's). Medians of ``--calls`` one-row predicts; the paired ratio per round.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer_models import fit, records


def _median_ms(model: Any, x: Any, filters: list[Any], calls: int) -> float:
    warnings.filters[:] = filters  # type: ignore[index]
    warnings._filters_mutated()  # type: ignore[attr-defined]
    model.predict(x)
    times = []
    for _ in range(calls):
        began = time.perf_counter()
        model.predict(x)
        times.append((time.perf_counter() - began) * 1e3)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--calls", type=int, default=60)
    a = p.parse_args()
    import pandas as pd
    import scipy.special  # noqa: F401  (a FastAPI worker unpickling the forest has its filter)

    model, sample = fit("forest")
    fastapi = list(warnings.filters)
    import bentoml  # noqa: F401
    from ray import serve  # noqa: F401

    import jupyter_deploy.replica.app  # noqa: F401
    from jupyter_deploy.replica.warning_filters import compacted

    raw = list(warnings.filters)
    short = compacted(raw)
    x = pd.DataFrame(records(sample, 1))
    print(f"filters: FastAPI-like {len(fastapi)}, replica {len(raw)}, compacted {len(short)}")
    print(
        "| round | replica (ms) | compacted (ms) | FastAPI-like (ms) | compacted / replica "
        "| compacted / FastAPI-like |\n| --- | --- | --- | --- | --- | --- |"
    )
    for rnd in range(a.rounds):
        order = [("raw", raw), ("short", short), ("fastapi", fastapi)]
        got = {k: _median_ms(model, x, f, a.calls) for k, f in order[rnd % 3 :] + order[: rnd % 3]}
        print(
            f"| {rnd} | {got['raw']:.2f} | {got['short']:.2f} | {got['fastapi']:.2f} | "
            f"{got['short'] / got['raw']:.2f} | {got['short'] / got['fastapi']:.2f} |"
        )


if __name__ == "__main__":
    main()
