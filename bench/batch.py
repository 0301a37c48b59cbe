"""Batch inference: ``dep.batch`` against one process reading Parquet and calling predict.

```
python bench/batch.py                   # 1,000,000 rows; memory at 100,000 vs 1,000,000
python bench/batch.py --rows 5000000    # the issue's size, if the machine has the time
```

Not run in CI. Starts its own embedded cluster (own JD_HOME and BENTOML_HOME under
``--out``; ports from JD_RAY_PORT / JD_HTTP_PORT / JD_REPLICA_PORTS, so export free ones)
and stops it at the end. Figures, in one run on the same machine state:

* rows/s of the reference: ``pyarrow.parquet.ParquetFile.iter_batches`` (64k rows) ->
  ``model.predict`` in this process, no validation, nothing written;
* rows/s of one process doing the job's work: the same read, the runtime's all-float
  check (``matrix_input``), predict, and a Parquet output of id, prediction and version;
* rows/s of ``dep.batch(path, output)``, cold (first job: worker processes start, import
  and load the Bento) and warm (second job: the pooled workers still hold it), and their
  ratio to the reference;
* marginal rows/s: the 10x job's extra rows over its extra seconds against the 1x job
  (the fixed cost of planning and starting the job's tasks cancels out);
* peak memory while a job runs (sum of RSS of this driver and every process of the
  cluster's session, sampled every 0.1 s; and the same minus the sum before the job) for
  1/10 of the rows and for all of them: streaming means the second is not ten times the
  first. ``load_average`` is the machine's before and after (it is shared: compare the
  ratios, measured side by side, not the rows/s of two runs);
* the same job and reference (interleaved rounds) for models whose predict, not the
  read, is the work, on the 1/10 file: a HistGradientBoostingClassifier (100 trees) and
  a RandomForestClassifier (100 trees), as scikit-learn makes them, on the same 4
  features. The boosting's predict is multi-threaded (OpenMP): the reference keeps a
  thread per core, the job's tasks one each (Ray sets ``OMP_NUM_THREADS`` to a task's
  CPUs), so both use 2 cores. The forest predicts on one thread (``n_jobs=None``) in
  both.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

FEATURES = ["f0", "f1", "f2", "f3"]
CHUNK = 131_072


def write_parquet(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` generated rows, written in row groups so generating them stays small."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    writer = None
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        cols = {f: rng.normal(size=n) for f in FEATURES}
        cols["customer_id"] = np.arange(start, start + n)
        table = pa.table(cols)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def reference_same_work(path: Path, model: Any, out: Path) -> float:
    """rows/s of one process doing the job's work: read, validate, predict, write."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jupyter_deploy._bento.runtime import Column, InputSchema, ModelRuntime

    schema = InputSchema([Column(f, "float", "float64") for f in FEATURES], frame=True)
    runtime = ModelRuntime(model, schema, max_batch_rows=65_536)
    began, rows, writer = time.perf_counter(), 0, None
    for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
        x = np.column_stack([batch.column(f).to_numpy() for f in FEATURES])
        pred = runtime.run("predict", runtime.matrix_input(x))
        table = pa.table({"customer_id": batch.column("customer_id"), "prediction": pred,
                          "version": np.ones(len(x), dtype=np.int64)})  # fmt: skip
        writer = writer or pq.ParquetWriter(out, table.schema)
        writer.write_table(table)
        rows += len(x)
    assert writer is not None
    writer.close()
    return rows / (time.perf_counter() - began)


def reference(path: Path, model: Any) -> float:
    """rows/s of one process: read the Parquet in chunks, predict, keep nothing."""
    import numpy as np
    import pyarrow.parquet as pq

    began, cpu, rows = time.perf_counter(), time.process_time(), 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536, columns=FEATURES):
        x = np.column_stack([batch.column(f).to_numpy() for f in FEATURES])
        model.predict(x)
        rows += len(x)
    wall = time.perf_counter() - began
    REFERENCE_CPU.append((time.process_time() - cpu) / wall)
    return rows / wall


#: CPU-seconds per wall-second of each reference run (its threads included).
REFERENCE_CPU: list[float] = []


def rounds(dep: Any, path: Path, model: Any, out: Path, count: int) -> dict[str, Any]:
    """``count`` rounds of reference, warm job, reference: each job's rows/s over the mean
    of the two references beside it (the machine's load moves between runs)."""
    import statistics

    ratios, jobs, refs, cpu = [], [], [], []
    for i in range(count):
        before = reference(path, model)
        cpu.append(REFERENCE_CPU[-1])
        job = dep.batch(str(path), str(out / f"round-{i}.parquet"), keep=["customer_id"],
                        progress=False)  # fmt: skip
        after = reference(path, model)
        cpu.append(REFERENCE_CPU[-1])
        ratios.append(job.rows_per_s / ((before + after) / 2))
        jobs.append(round(job.rows_per_s))
        refs += [round(before), round(after)]
    return {"rows": job.rows, "ratio_median": round(statistics.median(ratios), 3),
            "ratios": [round(r, 3) for r in ratios], "job_rows_per_s": jobs,
            "reference_rows_per_s": refs,
            "reference_cpu_per_wall": [round(c, 2) for c in cpu],
            "load_average": os.getloadavg()}  # fmt: skip


class PeakMemory:
    """Peak of (driver + cluster session) RSS above its level at start, in MB."""

    def __init__(self, session_pid: int) -> None:
        self.session_pid = session_pid
        self.base = self._total()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _total(self) -> int:
        import psutil

        from jupyter_deploy.control.cluster import session_pids

        total = 0
        for pid in {os.getpid(), *session_pids(self.session_pid)}:
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self._total())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def total_mb(self) -> float:
        return self.peak / 1e6

    @property
    def mb(self) -> float:
        return (self.peak - self.base) / 1e6


def tree_row(jd: Any, model: Any, sample: Any, path: Path, work: Path, count: int) -> dict:
    """Reference and job (cold, then warm rounds) for a tree model on ``path``."""
    model.fit(sample.to_numpy(), (sample.f0 > sample.f1).astype(int))
    dep = jd.deploy(model, name="bench-batch-tree", sample=sample, progress=False)
    cold = dep.batch(str(path), str(work / "tree-cold.parquet"), keep=["customer_id"],
                     progress=False)  # fmt: skip
    row = {"cold_seconds": round(cold.seconds, 2)}
    row.update(rounds(dep, path, model, work / "tree", count))
    dep.delete()
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--workers", type=int, default=None, help="scoring tasks (default: auto)")
    p.add_argument("--out", default="bench/results/batch")
    p.add_argument("--no-tree", action="store_true", help="skip the gradient-boosting row")
    p.add_argument("--rounds", type=int, default=5, help="interleaved reference/job rounds")
    args = p.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="jd-bench-batch-", dir=out))
    os.environ["JD_HOME"] = str(work / "home")
    os.environ["BENTOML_HOME"] = str(work / "bentoml")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    import jupyter_deploy as jd

    rng = np.random.default_rng(1)
    sample = pd.DataFrame(rng.normal(size=(2000, 4)), columns=FEATURES)
    model = LogisticRegression().fit(sample.to_numpy(), (sample.f0 > sample.f1).astype(int))
    small, large = work / "small.parquet", work / "large.parquet"
    write_parquet(small, args.rows // 10)
    write_parquet(large, args.rows)

    info = jd.start_cluster()
    try:
        dep = jd.deploy(model, name="bench-batch", sample=sample, progress=False)
        ref = reference(large, model)
        same = reference_same_work(large, model, work / "reference-scores.parquet")
        figures: dict[str, Any] = {"rows": args.rows, "load_average": os.getloadavg(),
                                   "reference_rows_per_s": round(ref),
                                   "reference_same_work_rows_per_s": round(same)}  # fmt: skip
        for label, path in [("cold", large), ("warm", large), ("small", small), ("large", large)]:
            with PeakMemory(info.pid) as mem:
                scores = str(work / f"scores-{label}.parquet")
                job = dep.batch(str(path), scores, keep=["customer_id"], workers=args.workers,
                                progress=False)  # fmt: skip
            figures[label] = {"rows": job.rows, "seconds": round(job.seconds, 2),
                              "rows_per_s": round(job.rows_per_s),
                              "ratio_to_reference": round(job.rows_per_s / ref, 4),
                              "ratio_to_same_work": round(job.rows_per_s / same, 4),
                              "peak_mb": round(mem.mb, 1),
                              "peak_total_mb": round(mem.total_mb, 1)}  # fmt: skip
            print(label, figures[label], flush=True)
        # The same reference again: how much the machine's load moved during the jobs.
        figures["reference_after_rows_per_s"] = round(reference(large, model))
        # Rows/s once the job runs: the fixed cost (planning, starting the tasks) cancels
        # out between the 1x and the 10x job.
        extra = figures["large"]["seconds"] - figures["small"]["seconds"]
        marginal = (args.rows - args.rows // 10) / extra if extra > 0 else float("nan")
        figures["marginal_rows_per_s"] = round(marginal)
        figures["marginal_ratio_to_reference"] = round(marginal / ref, 4)
        figures["marginal_ratio_to_same_work"] = round(marginal / same, 4)
        # The figure: peak memory of the 10x job over the 1x job's (driver and
        # cluster RSS). Above idle too, but that is small once the workers hold the model.
        figures["memory_10x_over_1x"] = round(
            figures["large"]["peak_total_mb"] / figures["small"]["peak_total_mb"], 2
        )
        figures["memory_above_idle_10x_over_1x"] = round(
            figures["large"]["peak_mb"] / max(figures["small"]["peak_mb"], 1.0), 2
        )
        figures["rounds"] = rounds(dep, large, model, work, args.rounds)
        print("rounds", figures["rounds"], flush=True)
        figures["load_average_after"] = os.getloadavg()
        dep.delete()
        if not args.no_tree:
            from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

            trees = {"hgb": HistGradientBoostingClassifier(random_state=0),
                     "forest": RandomForestClassifier(100, random_state=0)}  # fmt: skip
            for key, tree in trees.items():
                figures[key] = tree_row(jd, tree, sample, small, work / key, 3)
                print(key, figures[key], flush=True)
    finally:
        jd.stop_cluster()
    (out / "batch.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
