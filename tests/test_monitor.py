"""The live monitor widget: it updates from the cluster's numbers, and stops when told."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import wait_for

pytestmark = pytest.mark.cluster

ROW = [[5.1, 3.5, 1.4, 0.2]]


def test_monitor_shows_live_traffic_then_stops(iris_dep: Any) -> None:
    before = iris_dep.metrics()["total_requests"]  # the deployment is shared: count from here
    monitor = iris_dep.monitor(interval_s=0.2, window_s=60).start()
    try:
        for _ in range(25):
            iris_dep.predict(ROW)

        def caught_up() -> bool:  # this test's 25 pushed, and the monitor drawn after them
            total = iris_dep.metrics()["total_requests"]
            return (
                total >= before + 25 and f"{total} requests since deploy" in monitor.summary.value
            )

        wait_for(caught_up, 20, "the monitor to show every request")
        assert ">200<" in monitor.statuses.value

        def drawn() -> bool:  # a line needs two seconds of traffic; a fast machine fits 25
            iris_dep.predict(ROW)  # requests in one
            return "<polyline" in monitor.traffic.value

        wait_for(drawn, 20, "a drawn line, not a placeholder")
        assert "running" in monitor.summary.value
        wait_for(lambda: monitor.updates >= 2, 20, "a second update")
    finally:
        monitor.widget.close()  # closing the widget stops the updates
    assert not monitor.running
    updates = monitor.updates
    time.sleep(0.6)
    assert monitor.updates == updates
    assert "updates stopped" in monitor.summary.value


def test_monitor_magic(iris_dep: Any, capsys: Any) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext jupyter_deploy").raise_error()
    monitor = shell.run_cell("%monitor iris --interval 0.2").result
    try:
        wait_for(lambda: monitor.updates >= 1, 20, "the first update")  # displayed: started
        assert monitor.deployment.name == "iris"
    finally:
        monitor.stop()
    capsys.readouterr()
    assert shell.run_cell("%monitor ghost").result is None
    assert "No deployment named 'ghost'" in capsys.readouterr().err


def test_monitor_shows_drift_accuracy_and_a_static_copy(iris_dep: Any, iris: Any) -> None:
    x, y = iris
    for i in range(0, 150, 15):  # the whole data set, graded: drift-free, accuracy known
        iris_dep.predict(x.iloc[i : i + 15])
        iris_dep.feedback(iris_dep.last_request_id, y.iloc[i : i + 15].to_numpy())
    monitor = iris_dep.monitor(interval_s=0.2)
    bundle = monitor._repr_mimebundle_()  # what display() sends: widget + static copy
    try:
        assert "application/vnd.jupyter.widget-view+json" in bundle
        assert "requests since deploy" in bundle["text/html"]

        def graded() -> bool:
            monitor.refresh_quality()
            return "accuracy" in monitor.quality.value

        wait_for(graded, 20, "accuracy in the monitor")
        assert "no input drift" in monitor.quality.value
        assert (
            "predictions (n=" in monitor.predictions.value and "<rect" in monitor.predictions.value
        )
        assert "petal_length" in monitor.drift.value and "⚠" not in monitor.drift.value
    finally:
        monitor.stop()


def test_monitor_updates_in_a_real_kernel(iris_dep: Any) -> None:
    """The widget's model state changes on the kernel's iopub channel as traffic comes."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        kc.execute(
            "import jupyter_deploy as jd\nm = jd.get('iris').monitor(interval_s=0.3)\ndisplay(m)\n"
        )
        summaries: list[str] = []

        def seen_count(at_least: int) -> bool:
            while True:
                try:
                    msg = kc.get_iopub_msg(timeout=0.2)
                except Exception:  # queue empty for now
                    break
                content = msg["content"]
                state = content.get("data", {}).get("state", {})
                value = state.get("value", "")
                if msg["msg_type"] in ("comm_open", "comm_msg") and "since deploy" in value:
                    summaries.append(value)
            counts = [int(s.split(" requests since deploy")[0].split("· ")[-1]) for s in summaries]
            return bool(counts) and max(counts) >= at_least

        wait_for(lambda: seen_count(1), 60, "the monitor's first state")
        before = iris_dep.metrics()["total_requests"]
        for _ in range(10):
            iris_dep.predict(ROW)
        wait_for(lambda: seen_count(before + 10), 30, "an update with the new requests")
        kc.execute("m.stop()")
        wait_for(lambda: seen_count(0) and "updates stopped" in summaries[-1], 20, "the stop")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
