"""The session chart: time ticks, tariff boundaries, target and reserve SoC, departure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from csms.model import MeterSample
from csms.review import chart_series
from csms.web.chart import SocMarks, session_chart, time_ticks

T0 = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)


def test_ticks_fall_on_round_utc_instants_at_most_eight() -> None:
    ticks = time_ticks(T0 + timedelta(minutes=3), T0 + timedelta(minutes=78))
    assert [f"{t:%H:%M}" for t in ticks] == [
        "16:40", "16:50", "17:00", "17:10", "17:20", "17:30", "17:40"
    ]  # fmt: skip
    day = time_ticks(T0, T0 + timedelta(hours=20))
    assert len(day) <= 8 and all(t.minute == 0 and t.hour % 3 == 0 for t in day)
    week = time_ticks(T0, T0 + timedelta(days=30))
    assert 1 <= len(week) <= 8


def test_chart_marks_ticks_boundaries_target_reserve_and_departure() -> None:
    samples = [
        MeterSample(T0 + timedelta(minutes=m), "SoC", soc, "Percent")
        for m, soc in ((0, 40), (30, 50), (75, 42))
    ]
    svg = session_chart(
        chart_series(samples),
        boundaries=[T0 + timedelta(minutes=30), T0 + timedelta(hours=5)],  # the 2nd: outside
        marks=SocMarks(target_pct=80, reserve_pct=20, departure=T0 + timedelta(minutes=60)),
    )
    assert re.findall(r'data-tick="([^"]+)"', svg)[:2] == ["2026-11-25T16:30Z", "2026-11-25T16:40Z"]
    assert ">16:40<" in svg and ">17:40<" in svg
    assert re.findall(r'data-boundary="([^"]+)"', svg) == ["2026-11-25T17:00:00Z"]
    assert 'data-level="target" data-value="80"' in svg
    assert 'data-level="reserve" data-value="20"' in svg
    assert 'data-departure="2026-11-25T17:30:00Z"' in svg
    assert ">100<" in svg  # the SoC panel spans 0-100 %, not just the readings
    bare = session_chart(chart_series(samples))
    assert "data-level" not in bare and "data-boundary" not in bare
