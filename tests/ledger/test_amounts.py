from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from hypothesis import given
from hypothesis import strategies as st

from ledger.amounts import PricedInterval, round_half_even_div, settlement_amount


def test_half_rounds_to_even() -> None:
    assert round_half_even_div(500, 1000) == 0
    assert round_half_even_div(1500, 1000) == 2
    assert round_half_even_div(2500, 1000) == 2
    assert round_half_even_div(-500, 1000) == 0
    assert round_half_even_div(-1500, 1000) == -2
    assert round_half_even_div(-2501, 1000) == -3


def test_amount_nets_export_against_import() -> None:
    intervals = [
        PricedInterval(import_wh=10_000, export_wh=0, import_price=300_000, export_price=100_000),
        PricedInterval(import_wh=0, export_wh=4_000, import_price=300_000, export_price=450_000),
    ]
    # 10 kWh * 0.30 - 4 kWh * 0.45 = 3.00 - 1.80 = 1.20 currency units
    assert settlement_amount(intervals) == 1_200_000


@given(st.integers(-(10**15), 10**15), st.integers(1, 10**6))
def test_matches_decimal_reference(numerator: int, denominator: int) -> None:
    expected = int(
        (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    )
    assert round_half_even_div(numerator, denominator) == expected
