"""The one line a station prints per ended session, from its Begin and End samples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from chargepoint.metering import MeterReading, ReadingContext
from chargepoint.session_report import session_report
from chargepoint.transaction import MeterSample, sample_reading

T0 = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
EVERY = ("Energy.Active.Import.Register", "Energy.Active.Export.Register", "SoC")


def sample(
    at: datetime,
    import_wh: int,
    export_wh: int,
    soc: int | None,
    measurands: tuple[str, ...] = EVERY,
) -> MeterSample:
    reading = MeterReading(import_wh=import_wh, export_wh=export_wh, power_w=0, soc=soc)
    return sample_reading(
        reading, now=at, context=ReadingContext.SAMPLE_PERIODIC, measurands=measurands
    )


def test_a_line_with_times_duration_energy_in_and_out_and_soc() -> None:
    report = session_report(
        station_id="CS1",
        evse_id=2,
        transaction_id="tx-9",
        begin=sample(T0.astimezone(timezone(timedelta(hours=2))), 100_000, 5_000, 40),
        end=sample(T0 + timedelta(hours=4, minutes=29, seconds=40), 112_345, 8_200, 62),
        reason="Local",
    )
    assert (report.import_wh, report.export_wh) == (12_345, 3_200)
    assert report.seconds == 4 * 3600 + 29 * 60 + 40
    assert report.line() == (
        "CS1 EVSE 2 transaction tx-9: 2026-12-04 01:00:00 -> 2026-12-04 05:29:40 UTC"
        " (4 h 30 min), 12.345 kWh in, 3.200 kWh out, SoC 40 -> 62 %, ended Local"
    )


def test_what_the_meter_did_not_report_is_not_made_up() -> None:
    only_import = ("Energy.Active.Import.Register",)
    report = session_report(
        station_id="CS1",
        evse_id=1,
        transaction_id="tx-1",
        begin=sample(T0, 0, 0, None, only_import),
        end=sample(T0 + timedelta(minutes=30), 2_000, 0, None, only_import),
        reason="Remote",
    )
    assert report.export_wh is None and report.soc_start is None
    assert report.line().endswith("(0 h 30 min), 2.000 kWh in, ? kWh out, ended Remote")
