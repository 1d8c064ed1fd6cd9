"""How the pages write numbers and times: kWh, money, compact UTC times, ages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from csms.timeutil import parse_timestamp
from ledger.tables import amount_text, kwh_text, utc_text


def kwh(wh: int | None) -> str:
    return "" if wh is None else kwh_text(wh)


def money(micro: int | None, currency: str | None) -> str:
    return "" if micro is None else amount_text(micro, currency)


def short_time(stamp: str | None) -> str:
    """``2026-11-25 16:30`` in UTC for an RFC 3339 time (any offset): compact for a table.

    Text that is not a timestamp is shown as it is.
    """
    if not stamp:
        return ""
    try:
        moment = parse_timestamp(stamp)
    except ValueError:
        return stamp
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M}"


def ms_time(ms: int | None) -> str:
    """``2026-11-25 16:30:05 UTC`` for a ledger time (Unix milliseconds)."""
    return "" if ms is None else f"{utc_text(ms)} UTC"


def age(seconds: float) -> str:
    """``42 s``, ``5 min``, ``3 h 10 min``, ``2 d 4 h``: how long ago, for a reader."""
    whole = max(0, int(seconds))
    if whole < 120:
        return f"{whole} s"
    minutes, hours = whole // 60, whole // 3600
    if hours < 2:
        return f"{minutes} min"
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} d {hours % 24} h"


def tariff_boundaries(intervals: list[dict[str, Any]]) -> list[datetime]:
    """Where the settled intervals change price: each interval's start but the first."""
    starts = []
    for interval in intervals[1:]:
        try:
            starts.append(parse_timestamp(str(interval.get("start", ""))))
        except ValueError:
            continue
    return starts
