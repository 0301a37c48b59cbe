"""The live monitor widget: it updates from the cluster's numbers, and stops when told."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import wait_for

pytestmark = pytest.mark.cluster

ROW = [[5.1, 3.5, 1.4, 0.2]]


def test_monitor_shows_live_traffic_then_stops(iris_dep: Any) -> None:
    monitor = iris_dep.monitor(interval_s=0.2, window_s=60).start()
    try:
        for _ in range(25):
            iris_dep.predict(ROW)

        def caught_up() -> bool:
            total = iris_dep.metrics()["total_requests"]
            return total >= 25 and f"{total} requests since deploy" in monitor.summary.value

        wait_for(caught_up, 20, "the monitor to show every request")
        assert "<polyline" in monitor.traffic.value  # a drawn line, not a placeholder
        assert ">200<" in monitor.statuses.value
        assert "running" in monitor.summary.value and monitor.updates >= 2
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
