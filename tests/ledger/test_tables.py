"""The command line's table formatter and the human forms of times and amounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ledger.tables import amount_text, kwh_text, render_table, rfc3339_ms, utc_text, who_pays
from tests.table_checks import assert_aligned


def test_columns_are_as_wide_as_their_widest_cell() -> None:
    text = render_table(
        ("STATION", "IMPORT (kWh)", "LAST SEEN (UTC)"),
        [
            ("CS-A-VERY-LONG-STATION-IDENTIFIER", "1.000", "2026-11-25 16:30:00"),
            ("CS1", "123456.789", "-"),
        ],
        right={1},
    )
    lines = text.splitlines()
    assert lines[0].index("IMPORT") == len("CS-A-VERY-LONG-STATION-IDENTIFIER") + 2
    assert lines[1].endswith("2026-11-25 16:30:00") and lines[2].endswith("-")
    assert lines[1].index("1.000") + 5 == lines[2].index("123456.789") + 10  # right-aligned
    assert assert_aligned(text)[2] == ["CS1", "123456.789", "-"]


def test_short_rows_are_padded_and_long_ones_refused() -> None:
    assert render_table(("A", "B"), [("x",)]) == "A  B\nx\n"
    with pytest.raises(ValueError, match="3 cells"):
        render_table(("A", "B"), [("x", "y", "z")])


def test_times_are_shown_in_utc_whatever_they_came_as() -> None:
    moment = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)
    assert utc_text(moment) == "2026-11-25 16:30:00"
    assert utc_text("2026-11-25T16:30:00.123Z") == "2026-11-25 16:30:00"
    assert utc_text("2026-11-25T17:30:00+01:00") == "2026-11-25 16:30:00"
    assert utc_text(moment.astimezone(timezone(timedelta(hours=-5)))) == "2026-11-25 16:30:00"
    assert utc_text(int(moment.timestamp() * 1000) + 999) == "2026-11-25 16:30:00"  # epoch ms
    assert utc_text(None) == "-" and utc_text("", missing="never") == "never"
    assert utc_text("yesterday") == "yesterday"  # not a time: shown as it is


def test_amounts_in_currency_units_with_their_sign() -> None:
    assert amount_text(3_549_060, "EUR", places=6) == "3.549060 EUR"
    assert amount_text(3_549_060, "EUR") == "3.55 EUR"
    assert amount_text(-125_000, "EUR") == "-0.12 EUR"  # half to even
    assert amount_text(-135_000) == "-0.14"
    assert amount_text(None, "EUR") == "-"
    assert kwh_text(12_345) == "12.345" and kwh_text(0) == "0.000" and kwh_text(-5) == "-0.005"
    assert who_pays(1) == "paid by the driver" and who_pays(-1) == "paid to the driver"
    assert who_pays(0) == "nothing to pay"


def test_block_times_as_rfc3339() -> None:
    assert rfc3339_ms(1_764_088_200_123) == "2025-11-25T16:30:00.123Z"
