"""Timestamps on the wire: RFC 3339 with a timezone and at most millisecond precision."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """``2026-11-25T10:00:00.123Z``: UTC, millisecond precision, always with a zone."""
    if moment.tzinfo is None:
        raise ValueError("refusing to format a timestamp without a timezone")
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    """Parse an RFC 3339 timestamp; one without a timezone is an error (strict mode)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone")
    return moment


def median_skew(rows: Sequence[Any]) -> float | None:
    """Seconds the station's clock runs ahead (negative: behind) over (timestamp, received_at)
    pairs: the median; None without a readable pair."""
    gaps = []
    for timestamp, received_at in rows:
        try:
            gap = parse_timestamp(timestamp) - parse_timestamp(received_at)
        except (TypeError, ValueError):
            continue
        gaps.append(gap.total_seconds())
    if not gaps:
        return None
    gaps.sort()
    return gaps[len(gaps) // 2]
