"""The model path's first call after a pause, in one process: is anything lazy, or cold?

``python bench/pause.py [--pauses 1 65 1 65 2]``

Loads the iris pipeline into the Bento runtime as a replica does (no Ray, no HTTP), warms
it with 300 calls, then for each pause sleeps that long and times the next call (JSON
parse, validation, ``predict``, answer) against the 20 after it, in wall time and in the
thread's own CPU time. CPU time leaves out the waits a loaded machine imposes, so a
first call that costs more CPU than the next ones found something cold: if it does after a
1 s pause as much as after a minute, no timer or cache of ours expired; the process's
code and data went cold in the CPU's caches while other processes ran.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peer_models import fit, records_body


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pauses", type=float, nargs="+", default=[1, 65, 1, 65, 2])
    a = p.parse_args()
    from jupyter_deploy._bento import runtime as rt
    from jupyter_deploy.build.capture import infer_schema

    model, sample = fit("iris")
    schema = infer_schema(model, sample, allow_nan=False, label="model")
    runtime = rt.ModelRuntime(model, schema, 10_000)
    body = records_body(sample, 1).encode()

    def call() -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.thread_time()
        x = runtime.to_model_input(runtime.instances_from_body(body))
        rt.dumps(runtime.answer("predict", runtime.run("predict", x)))
        return (time.perf_counter() - wall) * 1e3, (time.thread_time() - cpu) * 1e3

    for _ in range(300):
        call()
    print("| pause (s) | first call wall / CPU (ms) | next 20, median wall / CPU (ms) | load |")
    print("| --- | --- | --- | --- |")
    for pause in a.pauses:
        time.sleep(pause)
        first = call()
        rest = [call() for _ in range(20)]
        wall = statistics.median(r[0] for r in rest)
        cpu = statistics.median(r[1] for r in rest)
        print(f"| {pause:g} | {first[0]:.2f} / {first[1]:.2f} | {wall:.2f} / {cpu:.2f} | "
              f"{os.getloadavg()[0]:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
