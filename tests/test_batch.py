"""Batch inference on the session's cluster: Ray Data actors scoring with the endpoint's Bento.

One tiny deployment serves every test: a logistic regression on four numeric features,
wrapped so that it refuses rows it was not made for (as a model with a closed vocabulary
would), so all four kinds of bad rows can be planted in one input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import jupyter_deploy as jd
from jupyter_deploy.errors import BatchInputError, BatchOutputExistsError, BatchSpecError

pytestmark = pytest.mark.cluster

N = 100_000
FEATURES = ["f0", "f1", "f2", "f3"]
REFUSED = 99.0  # f0 value the model refuses


def _picky(model: Any) -> Any:
    """``model``, refusing rows with f0 == REFUSED (ValueError, like an unseen category).

    The class is made in a function so cloudpickle ships it by value: the replicas and
    the scoring actors cannot import this test module.
    """

    class Picky:
        def __init__(self) -> None:
            self.model = model
            self.classes_ = model.classes_

        def _check(self, x: Any) -> Any:
            x = np.asarray(x, dtype=float)
            if (x[:, 0] == REFUSED).any():
                raise ValueError("f0 = 99 was never seen in training")
            return x

        def predict(self, x: Any) -> Any:
            return self.model.predict(self._check(x))

        def predict_proba(self, x: Any) -> Any:
            return self.model.predict_proba(self._check(x))

    return Picky()


@pytest.fixture(scope="module")
def tiny(cluster: Any) -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    x = pd.DataFrame(rng.normal(size=(2000, 4)), columns=FEATURES)
    y = (x.f0 + 0.5 * x.f1 - x.f2 > 0).astype(int)
    model = LogisticRegression().fit(x.to_numpy(), y)
    dep = jd.deploy(_picky(model), name="batchy", sample=x, progress=False)
    return model, dep


def _rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=FEATURES)
    return frame.assign(customer_id=np.arange(n) * 10 + seed)


def _plant(frame: pd.DataFrame, seed: int) -> dict[int, str]:
    """50 bad rows at random places: 20 missing values, 15 infinities, 15 refused."""
    rng = np.random.default_rng(seed)
    where = sorted(rng.choice(len(frame), 50, replace=False).tolist())
    reasons = {}
    for i, row in enumerate(where):
        col = FEATURES[i % 4]
        if i < 20:
            frame.loc[row, col], reasons[row] = np.nan, f"column '{col}' is null"
        elif i < 35:
            frame.loc[row, col], reasons[row] = np.inf, f"column '{col}' is not finite"
        else:
            frame.loc[row, "f0"], reasons[row] = REFUSED, "the model rejected the input"
    return reasons


def test_parquet_folder_matches_model_predict_with_bad_rows_set_aside(
    tiny: tuple[Any, Any], tmp_path: Path
) -> None:
    model, dep = tiny
    frame = _rows(N, 1)
    reasons = _plant(frame, 2)
    (tmp_path / "in").mkdir()
    frame.iloc[: N // 2].to_parquet(tmp_path / "in" / "part-0.parquet")
    frame.iloc[N // 2 :].to_parquet(tmp_path / "in" / "part-1.parquet")
    out = tmp_path / "scores.parquet"
    before = dep.metrics()

    job = dep.batch(tmp_path / "in", str(out), keep=["customer_id"], progress=False)

    assert (job.rows, job.failed, job.version) == (N, 50, dep.version)
    after = dep.metrics()  # counted as batch, apart from the live traffic
    counted = {k: after["batch"][k] - before["batch"][k] for k in ("jobs", "rows", "failed")}
    assert counted == {"jobs": 1, "rows": N, "failed": 50}
    assert after["total_requests"] == before["total_requests"]
    assert job.output == str(out) and job.errors_output == f"{out}.errors.parquet"
    good = frame.drop(index=list(reasons))
    scored = pd.read_parquet(out)
    assert list(scored.columns) == ["customer_id", "prediction", "version"]
    assert scored.customer_id.tolist() == good.customer_id.tolist()  # order intact
    assert (scored.prediction.to_numpy() == model.predict(good[FEATURES].to_numpy())).all()
    assert set(scored.version) == {dep.version}
    errors = pd.read_parquet(job.errors_output)
    assert errors.row.tolist() == sorted(reasons)
    assert errors.customer_id.tolist() == frame.customer_id[sorted(reasons)].tolist()
    for row, reason in zip(errors.row, errors.error, strict=True):
        assert reason.startswith(reasons[row]), (row, reason)
    assert "BatchResult batchy" in repr(job) and "50 failed" in job._repr_html_()


def test_parts_of_files_with_another_id_type_are_cast_to_the_first(
    tiny: tuple[Any, Any], tmp_path: Path
) -> None:
    model, dep = tiny
    a, b = _rows(300, 12), _rows(200, 13)
    (tmp_path / "in").mkdir()
    a.astype({"customer_id": "int32"}).to_parquet(tmp_path / "in" / "a.parquet")
    b.to_parquet(tmp_path / "in" / "b.parquet")  # int64 ids: the tasks' parts differ

    job = dep.batch(tmp_path / "in", str(tmp_path / "out.parquet"), keep=["customer_id"],
                    progress=False)  # fmt: skip

    assert (job.rows, job.failed, job.errors_output) == (500, 0, None)
    scored = pd.read_parquet(job.output)
    assert str(scored.customer_id.dtype) == "int32"
    both = pd.concat([a, b])
    assert scored.customer_id.tolist() == both.customer_id.tolist()
    assert (scored.prediction.to_numpy() == model.predict(both[FEATURES].to_numpy())).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out.parquet"]


def test_csv_glob_parses_text_and_names_wrong_types_and_missing_columns(
    tiny: tuple[Any, Any], tmp_path: Path
) -> None:
    model, dep = tiny
    a, b, c = _rows(300, 3), _rows(200, 4), _rows(100, 5)
    a.to_csv(tmp_path / "day-01.csv", index=False)
    text = b.astype({"f1": object})
    text.loc[7, "f1"] = "abc"  # wrong type
    text.loc[9, "f2"] = np.nan  # an empty cell
    text.to_csv(tmp_path / "day-02.csv", index=False)
    c.drop(columns=["f3"]).to_csv(tmp_path / "day-03.csv", index=False)  # missing column
    a.to_csv(tmp_path / "other.csv", index=False)  # not matched by the glob
    out = tmp_path / "scores.csv"

    job = dep.batch(str(tmp_path / "day-*.csv"), str(out), keep=["customer_id"], progress=False)

    assert (job.rows, job.failed) == (600, 102)
    good = pd.concat([a, b.drop(index=[7, 9])])
    scored = pd.read_csv(out)
    assert scored.customer_id.tolist() == good.customer_id.tolist()
    assert (scored.prediction.to_numpy() == model.predict(good[FEATURES].to_numpy())).all()
    errors = pd.read_parquet(job.errors_output).set_index("row")
    assert errors.error[307] == "column 'f1' expects a number, got 'abc'"
    assert errors.error[309].startswith("column 'f2' is null")
    assert errors.index[2:].tolist() == list(range(500, 600))
    assert all("'f3'" in reason for reason in errors.error[500:])


def test_dataframe_in_memory_keeps_index_and_failed_rows_in_place(tiny: tuple[Any, Any]) -> None:
    model, dep = tiny
    frame = _rows(1000, 6).set_index("customer_id")
    frame.iloc[3, 0] = REFUSED

    scored = dep.batch(frame, method="predict_proba", progress=False)

    assert scored.index.tolist() == frame.index.tolist()
    assert list(scored.columns) == ["proba_0", "proba_1", "version", "error"]
    good = frame.drop(index=frame.index[3])
    expected = model.predict_proba(good.to_numpy())
    assert np.allclose(scored.drop(index=frame.index[3])[["proba_0", "proba_1"]], expected)
    assert scored.error.iloc[3].startswith("the model rejected the input: f0 = 99")
    assert scored.error.drop(index=frame.index[3]).isna().all()


def test_bad_jobs_fail_at_once_with_one_line(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    _, dep = tiny
    data = tmp_path / "in.parquet"
    _rows(10, 8).to_parquet(data)
    (tmp_path / "taken.parquet").write_bytes(b"x")
    cases = [
        (BatchInputError, str(tmp_path / "nothing-*.parquet"), "out.parquet", {}),
        (BatchInputError, str(tmp_path / "absent.csv"), "out.parquet", {}),
        (BatchSpecError, str(data), "out.parquet", {"keep": ["customer"]}),
        (BatchSpecError, str(data), "out.json", {}),
        (BatchSpecError, str(data), "out.parquet", {"version": 42}),
        (BatchSpecError, str(data), "out.parquet", {"method": "transform"}),
        (BatchOutputExistsError, str(data), "taken.parquet", {}),
    ]
    for error, source, output, options in cases:
        with pytest.raises(error) as info:
            dep.batch(source, str(tmp_path / output), progress=False, **options)
        assert "\n" not in str(info.value), str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "taken.parquet"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jupyter_deploy.cli", *args],
        capture_output=True, text=True, env=os.environ.copy(), timeout=300,
    )  # fmt: skip


def test_cli_batch(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    model, _ = tiny
    frame = _rows(500, 9)
    frame.to_parquet(tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"

    done = _cli("--json", "batch", "batchy", str(tmp_path / "in.parquet"), str(out),
                "--keep", "customer_id")  # fmt: skip

    assert done.returncode == 0, done.stderr
    # Ray forwards its workers' warnings to the driver's stdout (ray.init log_to_driver):
    # the JSON document is among them.
    summary, _ = json.JSONDecoder().raw_decode(done.stdout, done.stdout.index("{\n"))
    assert (summary["rows"], summary["failed"], summary["output"]) == (500, 0, str(out))
    scored = pd.read_parquet(out)
    assert (scored.prediction.to_numpy() == model.predict(frame[FEATURES].to_numpy())).all()
    again = _cli("batch", "batchy", str(tmp_path / "in.parquet"), str(out))
    assert again.returncode == 1
    last = again.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "--overwrite" in last, again.stderr


def test_matrix_input_accepts_exactly_what_to_model_input_accepts() -> None:
    from sklearn.linear_model import LogisticRegression

    from jupyter_deploy._bento.runtime import Column, InputError, InputSchema, ModelRuntime

    x = np.random.default_rng(10).normal(size=(50, 4))
    model = LogisticRegression().fit(x, x[:, 0] > 0)
    floats = [Column(f, "float", "float64") for f in FEATURES]
    for frame in (True, False):
        rt = ModelRuntime(model, InputSchema(floats, frame=frame), max_batch_rows=40)
        fast = rt.matrix_input(x[:40])
        assert (np.asarray(fast) == np.asarray(rt.to_model_input(x[:40].tolist()))).all()
        for bad in (np.nan, np.inf):
            y = x[:40].copy()
            y[5, 2] = bad
            assert rt.matrix_input(y) is None
            with pytest.raises(InputError):
                rt.to_model_input(y.tolist())
        assert rt.matrix_input(x) is None  # more rows than the limit: the slow path says why
    nullable = InputSchema([*floats[:3], Column("f3", "float", "float64", nullable=True)], True)
    assert ModelRuntime(model, nullable).matrix_input(x) is None


def test_job_that_cannot_load_its_bento_fails_in_one_line_and_writes_nothing(
    tiny: tuple[Any, Any], tmp_path: Path
) -> None:
    import dataclasses

    from jupyter_deploy.batch import job
    from jupyter_deploy.batch.records import BatchTarget
    from jupyter_deploy.errors import BatchFailedError

    _, dep = tiny
    target = BatchTarget.from_version(dep.name, dep.live)
    missing = dataclasses.replace(target, bento_tag=f"{dep.name}:nosuchversion")
    _rows(100, 11).to_parquet(tmp_path / "in.parquet")
    with pytest.raises(BatchFailedError) as info:
        job.run(missing, str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet"),
                progress=False)  # fmt: skip
    assert "is not in the cluster registry" in str(info.value) and "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]
