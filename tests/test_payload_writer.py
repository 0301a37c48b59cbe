"""The replica's payload writer on a real event loop, with sinks that are slow or broken."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from jupyter_deploy.monitoring.payload_log import PayloadLog, PayloadRecord, encode, to_frame
from jupyter_deploy.replica import payload_writer
from jupyter_deploy.replica.payload_writer import PayloadWriter


class SlowSink:
    """Takes each batch on another thread and needs ``delay_s`` to store it (parsed)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.records: list[dict[str, Any]] = []
        self.dropped = 0

    def send(self, lines: dict[str, str], dropped: int) -> threading.Thread:
        def store() -> None:
            time.sleep(self.delay_s)
            for text in lines.values():
                self.records.extend(json.loads(line) for line in text.splitlines())
            self.dropped += dropped

        thread = threading.Thread(target=store)
        thread.start()
        return thread

    @staticmethod
    def done(thread: threading.Thread) -> bool:
        return not thread.is_alive()


def _log(writer: PayloadWriter, i: int) -> None:
    writer.log(f"r{i}", 1, "predict", 200, 1.5, 1, b'{"instances": [[1]]}', b'{"predictions": [0]}')


def test_a_slow_sink_never_blocks_logging_and_drops_are_counted(monkeypatch: Any) -> None:
    monkeypatch.setattr(payload_writer, "BUFFER", 500)
    monkeypatch.setattr(payload_writer, "SEND_S", 0.05)
    sink = SlowSink(delay_s=2.0)  # far slower than the traffic
    writer = PayloadWriter(1.0, sink.send, sink.done)

    async def traffic() -> float:
        worst = 0.0
        for i in range(5000):
            started = time.perf_counter()
            _log(writer, i)
            worst = max(worst, time.perf_counter() - started)
            if i % 100 == 0:
                await asyncio.sleep(0.01)  # the background sender gets its turns
        return worst

    worst = asyncio.run(traffic())
    assert worst < 0.05  # appending never waits for the sink (typically microseconds)
    assert writer.dropped_total > 0  # the buffer filled while the sink lagged
    # Once the sink catches up, everything kept arrives, with the drops reported.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(sink.records) + sink.dropped < 5000:
        writer.ship()
        time.sleep(0.1)
    assert len(sink.records) + sink.dropped == 5000
    assert [r["request_id"] for r in sink.records] == sorted(
        (r["request_id"] for r in sink.records), key=lambda rid: int(rid[1:])
    )


def test_a_sink_that_raises_loses_records_not_requests() -> None:
    def broken(lines: dict[str, str], dropped: int) -> Any:
        raise ConnectionError("the log actor is gone")

    writer = PayloadWriter(1.0, broken, lambda ref: True)

    async def traffic() -> None:
        for i in range(100):
            _log(writer, i)
        writer.ship()

    asyncio.run(traffic())
    assert writer.dropped_total == 100


def test_a_record_that_cannot_be_encoded_is_dropped_alone_and_reported(caplog: Any) -> None:
    sink = SlowSink(0.0)
    writer = PayloadWriter(1.0, sink.send, sink.done)

    async def traffic() -> None:
        _log(writer, 0)
        writer.log("bad", 1, "predict", 200, 1.0, 1, ["not", "bytes"], b"{}")  # type: ignore[arg-type]
        _log(writer, 1)
        writer.ship()  # one batch: the bad record in the middle of two good ones

    asyncio.run(traffic())
    assert "could not encode 1 payload records" in caplog.text
    assert "unavailable" not in caplog.text  # the sink was not at fault
    deadline = time.monotonic() + 5
    while not sink.records and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r["request_id"] for r in sink.records] == ["r0", "r1"] and sink.dropped == 1
    assert writer.dropped_total == 1


def test_sampling_and_body_truncation() -> None:
    sink = SlowSink(0.0)
    writer = PayloadWriter(0.0, sink.send, sink.done)
    assert not any(writer.sampled() for _ in range(1000))
    writer.sample_rate = 0.25
    share = sum(writer.sampled() for _ in range(20_000)) / 20_000
    assert 0.22 < share < 0.28

    async def one_big() -> None:
        writer.log("big", 1, "predict", 200, 1.0, 1, b"x" * 300_000, b"{}")

    asyncio.run(one_big())
    writer.ship()
    deadline = time.monotonic() + 5
    while not sink.records and time.monotonic() < deadline:
        time.sleep(0.01)
    request = sink.records[0]["request"]
    assert len(request) < 100_100 and request.endswith("[truncated]")


def test_the_log_files_round_trip(tmp_path: Any) -> None:
    log = PayloadLog(str(tmp_path))
    now = time.time()
    records = [{"time": now - 90_000 + i, "request_id": f"r{i}", "version": 1, "method": "predict",
                "status": 200, "latency_ms": 1.0, "rows": 1, "request": '{"instances": [[1]]}',
                "response": "not json"} for i in range(3)]  # fmt: skip
    records.append({**records[0], "time": now, "request_id": "today"})
    log.append("m", encode(PayloadRecord(**r) for r in records), dropped=2)
    assert len(list((tmp_path / "m").glob("*.jsonl"))) == 2  # one file per UTC day
    assert [r["request_id"] for r in log.read("m")] == ["r0", "r1", "r2", "today"]
    assert [r["request_id"] for r in log.read("m", since=now - 1)] == ["today"]
    assert [r["request_id"] for r in log.read("m", until=now - 89_999)] == ["r0"]
    assert log.stats("m")["dropped"] == 2 and log.read("other") == []
    frame = to_frame(log.read("m"))
    assert frame["request"][0] == {"instances": [[1]]} and frame["response"][0] == "not json"
    assert str(frame["time"].dt.tz) == "UTC"


def test_records_without_a_shadow_field_read_as_not_shadowed() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas 3 warned on fillna(False) of a float column
        old = to_frame([{"time": 1.0, "request_id": "a"}])
        mixed = to_frame([{"time": 1.0, "shadow": True}, {"time": 2.0, "shadow": None}])
    assert old["shadow"].tolist() == [False] and old["shadow"].dtype == bool
    assert mixed["shadow"].tolist() == [True, False]


def test_the_lines_are_what_json_dumps_makes() -> None:
    """The replica's fixed-shape encoder against the json module, on awkward values."""
    odd = 'quote " backslash \\ newline \n tab \t nul \x00 é ☃ \U0001f600 \u2028'
    for shadow in (False, True):
        rec = PayloadRecord(1733466000.123456, odd, 3, "predict_proba", 422, 0.001, 32,
                            odd, '{"predictions": [0.1, 1e-07]}', shadow)  # fmt: skip
        fields = {k: v for k, v in rec._asdict().items() if k != "shadow" or shadow}
        (text,) = encode([rec]).values()
        assert text == json.dumps(fields, separators=(",", ":")) + "\n"
        assert json.loads(text) == fields
    midnight = [PayloadRecord(86_400.0 * 20_000 - 0.5 + i, f"r{i}", 1, "predict", 200, 1.0, 1,
                              "{}", "{}") for i in range(2)]  # fmt: skip
    assert list(encode(midnight)) == ["2024-10-03", "2024-10-04"]  # a batch across midnight
