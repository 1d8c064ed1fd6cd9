"""Rows removed past the per-station caps are all counted, and logged once per station, kind
and interval."""

from __future__ import annotations

import logging

import pytest

from csms.pruning import PruneLog


def test_every_removed_row_is_counted_and_each_station_logged_once_an_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="csms.pruning")
    log = PruneLog(interval=3600.0)
    assert log.note("A", "reports", 2, 10, now=0.0) is True
    assert log.note("A", "reports", 3, 10, now=10.0) is False  # within the hour
    assert log.note("A", "station_events", 1, 10, now=10.0) is True  # another kind
    assert log.note("B", "reports", 1, 10, now=10.0) is True  # another station
    assert log.note("A", "reports", 0, 10, now=5000.0) is False  # nothing removed
    assert log.note("A", "reports", 4, 10, now=3600.0) is True  # the next interval
    assert log.pruned == {"reports": 10, "station_events": 1}
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "A: reports past keep_reports (10 per station): 2 oldest removed"
    assert lines[-1].endswith(": 7 oldest removed")  # 3 unlogged + 4
    assert len(lines) == 4
