"""The one rounding rule for settlement amounts (DESIGN.md, "The settlement record").

``amount = round_half_even(sum(import_wh*import_price - export_wh*export_price) / 1000)``

Energy is in Wh, prices in micro-units of the currency per kWh, amounts in micro-units.
Integers only: the division is done exactly, never in floating point.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PricedInterval:
    """Energy moved in one tariff interval and the prices in force during it."""

    import_wh: int
    export_wh: int
    import_price: int
    export_price: int


def round_half_even_div(numerator: int, denominator: int) -> int:
    """Divide two integers, rounding the exact quotient half to even."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def settlement_amount(intervals: Iterable[PricedInterval]) -> int:
    """Net amount in micro-units: > 0 the driver pays, < 0 the driver is paid."""
    milli = sum(i.import_wh * i.import_price - i.export_wh * i.export_price for i in intervals)
    return round_half_even_div(milli, 1000)


def interval_totals(intervals: Iterable[Mapping[str, int]]) -> tuple[int, int, int]:
    """A record's intervals (objects with the ``PricedInterval`` fields) summed in one pass:
    imported Wh, exported Wh, and ``settlement_amount`` of them (what every validator
    checks for every settlement, without building a ``PricedInterval`` each)."""
    imported = exported = milli = 0
    for i in intervals:
        import_wh, export_wh = i["import_wh"], i["export_wh"]
        imported += import_wh
        exported += export_wh
        milli += import_wh * i["import_price"] - export_wh * i["export_price"]
    return imported, exported, round_half_even_div(milli, 1000)
