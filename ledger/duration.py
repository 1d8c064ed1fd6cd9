"""Durations as operators write them: ``90``, ``90s``, ``15m``, ``1h``, ``1d`` (seconds)."""

from __future__ import annotations

import re

_UNITS = {"": 1, "ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_FORM = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")


def parse_duration(value: object) -> float:
    """Seconds in ``value`` (a number of seconds, or a number with a unit: ms, s, m, h, d).

    Raises ``ValueError`` saying what was expected.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 90s, 15m or 1h, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _FORM.fullmatch(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2) or ""]
    else:
        raise ValueError(f"expected a duration such as 90s, 15m or 1h, got {value!r}")
    if seconds < 0:
        raise ValueError(f"expected a duration of zero or more, got {value!r}")
    return seconds
