from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms.tariffs import TariffError, load_tariff, parse_tariff

DAILY = b"""\
id: tou-2026
currency: EUR
timezone: Europe/Berlin
daily:
  - start: "17:00"
    import_price: 380000
    export_price: 450000
  - start: "07:00"
    import_price: 300000
    export_price: 90000
  - start: "21:00"
    import_price: 220000
    export_price: 60000
"""

SERIES = b"""\
id: spot-2026-11-25
currency: EUR
series:
  - start: "2026-11-25T10:00:00Z"
    import_price: 210000
    export_price: 60000
  - start: "2026-11-25T11:30:00+00:00"
    import_price: 410000
    export_price: 520000
  - start: 2026-11-25T13:00:00+01:00
    import_price: 190000
    export_price: 40000
"""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def test_sha256_is_of_the_file_bytes(tmp_path: Path) -> None:
    path = tmp_path / "tou.yaml"
    path.write_bytes(DAILY)
    tariff = load_tariff(path)
    assert tariff.sha256 == hashlib.sha256(DAILY).hexdigest()
    assert (tariff.id, tariff.currency) == ("tou-2026", "EUR")


def test_daily_prices_follow_local_time_in_winter() -> None:
    tariff = parse_tariff(DAILY, source="tou.yaml")
    # Berlin is UTC+1 in November: 17:00 local is 16:00 UTC
    assert tariff.price_at(utc(2026, 11, 25, 15, 59)).import_price == 300000
    peak = tariff.price_at(utc(2026, 11, 25, 16, 0))
    assert (peak.import_price, peak.export_price) == (380000, 450000)
    assert peak.start == utc(2026, 11, 25, 16, 0)
    # the last entry of a day runs until the first entry of the next
    night = tariff.price_at(utc(2026, 11, 26, 3, 0))
    assert night.import_price == 220000
    assert night.start == utc(2026, 11, 25, 20, 0)


def test_daily_boundaries_shift_with_daylight_saving() -> None:
    tariff = parse_tariff(DAILY, source="tou.yaml")
    summer = tariff.boundaries(utc(2026, 7, 1, 0, 0), utc(2026, 7, 2, 0, 0))
    assert summer == [utc(2026, 7, 1, 5, 0), utc(2026, 7, 1, 15, 0), utc(2026, 7, 1, 19, 0)]
    winter = tariff.boundaries(utc(2026, 11, 25, 10, 0), utc(2026, 11, 25, 18, 0))
    assert winter == [utc(2026, 11, 25, 16, 0)]


def test_boundaries_exclude_the_ends() -> None:
    tariff = parse_tariff(DAILY, source="tou.yaml")
    assert tariff.boundaries(utc(2026, 11, 25, 16, 0), utc(2026, 11, 25, 20, 0)) == []


def test_series_prices_and_boundaries() -> None:
    tariff = parse_tariff(SERIES, source="spot.yaml")
    assert tariff.price_at(utc(2026, 11, 25, 11, 29, 59)).import_price == 210000
    assert tariff.price_at(utc(2026, 11, 25, 11, 30)).export_price == 520000
    assert tariff.price_at(utc(2026, 12, 1)).import_price == 190000  # last runs on
    assert tariff.boundaries(utc(2026, 11, 25, 10), utc(2026, 11, 25, 14)) == [
        utc(2026, 11, 25, 11, 30),
        utc(2026, 11, 25, 12, 0),
    ]
    with pytest.raises(TariffError, match="no price before"):
        tariff.price_at(utc(2026, 11, 25, 9, 59))


def test_naive_times_are_refused() -> None:
    tariff = parse_tariff(SERIES, source="spot.yaml")
    with pytest.raises(ValueError, match="timezone"):
        tariff.price_at(datetime(2026, 11, 25, 12, 0))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            DAILY.replace(b"import_price: 380000", b"import_price: 0.38"),
            r"daily\[0\]\.import_price",
        ),
        (DAILY.replace(b'"17:00"', b'"5pm"'), r"daily\[0\]\.start: expected a local time"),
        (DAILY.replace(b"Europe/Berlin", b"Mars/Olympus"), "timezone: expected an IANA zone"),
        (DAILY.replace(b"EUR", b"euro"), "currency: expected an ISO 4217 code"),
        (DAILY.replace(b"id: tou-2026\n", b""), "id: expected a non-empty string"),
        (DAILY + SERIES.split(b"series:")[0] + b"series: []\n", "exactly one of"),
        (SERIES.replace(b"2026-11-25T11:30:00+00:00", b"2026-11-25T11:30:00"), "UTC offset"),
        (SERIES.replace(b"T11:30:00+00:00", b"T09:30:00+00:00"), "must increase"),
        (b"- just a list\n", "mapping at the top level"),
        (b"id: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_files_name_the_file_key_and_expectation(text: bytes, expected: str) -> None:
    with pytest.raises(TariffError, match=expected) as caught:
        parse_tariff(text, source="conf/tariff.yaml")
    assert str(caught.value).startswith("conf/tariff.yaml: ")


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TariffError, match=r"missing\.yaml"):
        load_tariff(tmp_path / "missing.yaml")


def test_price_at_each_boundary_changes() -> None:
    tariff = parse_tariff(DAILY, source="tou.yaml")
    start = utc(2026, 11, 24, 0, 0)
    marks = tariff.boundaries(start, start + timedelta(days=3))
    assert len(marks) == 9
    for mark in marks:
        assert tariff.price_at(mark).start == mark
        assert tariff.price_at(mark - timedelta(microseconds=1)).start < mark
