"""Aligned plain-text tables for the command line, and the human forms of what they show.

Every ``v2g`` command that lists things prints through :func:`render_table`: one header row,
columns as wide as their widest cell, numbers right-aligned, two spaces between columns, no
trailing blanks. Times are shown in UTC (``2026-11-25 16:30:00``, the header says ``(UTC)``),
energy in kWh and amounts in currency units with the currency, never epoch milliseconds or
micro-units. It lives in ``ledger/`` because every package of the project may import
``ledger`` while ``ledger`` imports none of them (pure: text in, text out).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

MICRO = 6  # amounts are integers in micro-units of the currency (1 EUR = 1,000,000)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def render_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], *, right: Collection[int] = ()
) -> str:
    """The rows under the header, aligned; the columns numbered in ``right`` right-aligned.

    Ends with a newline. A row with fewer cells than the header is padded with blanks.
    """
    lines = [tuple(header)]
    for row in rows:
        if len(row) > len(header):
            raise ValueError(f"a row of {len(row)} cells under a header of {len(header)}")
        lines.append((*row, *("",) * (len(header) - len(row))))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for line in lines:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def utc_text(value: str | int | datetime | None, *, missing: str = "-") -> str:
    """``2026-11-25 16:30:00`` in UTC for an RFC 3339 time, a datetime or Unix milliseconds.

    Text that is not an RFC 3339 time with a zone is shown as it is (a station's own words).
    """
    if value is None or value == "":
        return missing
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int):
        moment = EPOCH + timedelta(milliseconds=value)
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            return value
    if moment.tzinfo is None:
        return str(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def rfc3339_ms(epoch_ms: int) -> str:
    """``2026-11-25T16:30:00.123Z`` for Unix milliseconds (a block header's time)."""
    moment = EPOCH + timedelta(milliseconds=epoch_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def amount_text(micro: int | None, currency: str | None = None, *, places: int = 2) -> str:
    """Micro-units as currency units: ``3.55 EUR`` (``places`` 2, rounded half to even) or
    exactly, ``3.549060 EUR`` (``places`` 6). The sign is kept: > 0 the driver pays."""
    if micro is None:
        return "-"
    if not 0 <= places <= MICRO:
        raise ValueError(f"places must be 0 to {MICRO}")
    value = Decimal(micro).scaleb(-MICRO).quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)
    return f"{value} {currency}" if currency else str(value)


def kwh_text(wh: int | None) -> str:
    """Wh as kWh with three decimals (exact to the Wh): ``12.345``."""
    if wh is None:
        return "-"
    return str(Decimal(wh).scaleb(-3).quantize(Decimal("0.001")))


def who_pays(micro: int) -> str:
    """The sign convention in words: who pays the amount."""
    if micro > 0:
        return "paid by the driver"
    if micro < 0:
        return "paid to the driver"
    return "nothing to pay"
