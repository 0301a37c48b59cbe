"""Payload logs are private, redacted in the replica, and expire: files, writer and spec."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from jupyter_deploy.errors import InvalidSpecError
from jupyter_deploy.monitoring.payload_log import PayloadLog, PayloadRecord, encode
from jupyter_deploy.replica.payload_writer import WITHHELD, PayloadWriter, redact
from jupyter_deploy.spec import DeploymentSpec

COLUMNS = ["age", "ssn", "income"]
FIELDS = frozenset({"ssn"})


def _lines(*times: float, rid: str = "r") -> dict[str, str]:
    return encode(PayloadRecord(t, f"{rid}{i}" if len(times) > 1 else rid, 1, "predict", 200,
                                1.0, 1, "{}", "{}") for i, t in enumerate(times))  # fmt: skip


def test_files_are_owner_only_and_old_days_are_deleted(tmp_path: Path) -> None:
    log = PayloadLog(str(tmp_path / "payloads"))
    now = time.time()
    days = [now - d * 86400 for d in (45, 31, 29, 0)]
    log.append("m", _lines(*days, rid="d"))  # no retention given
    folder = tmp_path / "payloads" / "m"
    assert len(list(folder.glob("*.jsonl"))) == 4
    for path in (folder.parent, folder):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    for path in folder.glob("*.jsonl"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    log.append("m", _lines(now, rid="again"), retention_days=30)
    assert [r["request_id"] for r in log.read("m")] == ["d2", "d3", "again"]
    assert log.prune("m", 1, now=now + 2 * 86400) != []  # what a day later deletes
    assert log.read("m") == []


def test_a_log_file_from_before_is_made_private(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir(mode=0o755)
    day = time.strftime("%Y-%m-%d", time.gmtime())
    (folder / f"{day}.jsonl").write_text("")
    (folder / f"{day}.jsonl").chmod(0o644)
    PayloadLog(str(tmp_path)).append("m", _lines(time.time()))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / f"{day}.jsonl").stat().st_mode) == 0o600


def test_redaction_drops_fields_from_records_and_rows() -> None:
    body = {
        "instances": [{"age": 40, "ssn": "123-45-6789", "income": 5.0}, [41, "987-65-4321", 6.0]]
    }
    out = json.loads(redact(json.dumps(body), FIELDS, COLUMNS))
    assert out == {"instances": [{"age": 40, "income": 5.0}, [41, None, 6.0]]}
    # what cannot be read as instances is withheld whole: it may hold the field
    assert redact('{"ssn": "123-45-6789"}', FIELDS, COLUMNS) == WITHHELD
    assert redact('{"instances": [{"ssn": "1', FIELDS, COLUMNS) == WITHHELD
    assert redact('{"instances": [[1, "2", 3]]}', FIELDS, None) == WITHHELD


def test_the_writer_redacts_before_a_batch_leaves_the_replica() -> None:
    sent: list[str] = []
    writer = PayloadWriter(1.0, lambda lines, _: sent.extend(lines.values()), lambda _: True,
                           FIELDS)  # fmt: skip
    writer.columns[1] = COLUMNS
    secret = b'{"instances": [{"age": 40, "ssn": "123-45-6789", "income": 5.0}, [1, "999", 2]]}'

    async def one() -> None:
        writer.log("r", 1, "predict", 200, 1.0, 2, secret, b"{}")
        writer.ship()

    asyncio.run(one())
    assert "123-45-6789" not in "".join(sent) and "999" not in "".join(sent)
    (record,) = [json.loads(line) for text in sent for line in text.splitlines()]
    assert json.loads(record["request"])["instances"][0] == {"age": 40, "income": 5.0}


def test_the_spec_validates_and_defaults_the_log_settings() -> None:
    spec = DeploymentSpec("m", log_redact=["ssn", "dob"])  # type: ignore[arg-type]
    assert spec.log_redact == ("ssn", "dob") and spec.log_retention_days == 30
    assert DeploymentSpec.log_retention_days == 30 and DeploymentSpec.log_redact == ()
    assert DeploymentSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert DeploymentSpec("m", log_redact="ssn").log_redact == ("ssn",)  # type: ignore[arg-type]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InvalidSpecError, match="log_retention_days"):
            DeploymentSpec("m", log_retention_days=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidSpecError, match="log_redact"):
        DeploymentSpec("m", log_redact=("ssn", ""))


@pytest.mark.cluster
def test_a_deployment_logs_privately_without_the_redacted_field(
    cluster: Any, iris_pipe: Any, iris: tuple[Any, Any]
) -> None:
    import httpx
    from conftest import wait_for

    import jupyter_deploy as jd
    from jupyter_deploy.settings import Settings

    x = iris[0]
    dep = jd.deploy(iris_pipe, name="private", sample=x, log_redact=["petal_width"],
                    log_retention_days=7, progress=False)  # fmt: skip
    try:
        dep.predict(x.head(2))  # records
        rows = x.head(2).values.tolist()
        resp = httpx.post(f"{dep.url}/predict", json={"instances": rows},
                          headers={"Authorization": f"Bearer {dep.token}"}, timeout=60)  # fmt: skip
        assert resp.status_code == 200
        wait_for(lambda: len(dep.logs()) >= 2, 30, "2 records in the payload log")
        log = dep.logs()
        first, second = log["request"][0]["instances"], log["request"][1]["instances"]
        assert all("petal_width" not in r and "sepal_length" in r for r in first)
        assert [[r[0], r[3]] for r in second] == [[rows[0][0], None], [rows[1][0], None]]
        folder = Settings.from_env().home_path / "payloads" / "private"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.glob("*.jsonl"))
    finally:
        jd.undeploy("private")
