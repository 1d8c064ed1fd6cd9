from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from chargepoint.metering import MeterRequest, ReadingContext, SimulatedMeter

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def read(meter: SimulatedMeter, seconds: float, context=ReadingContext.SAMPLE_PERIODIC):
    return meter.read(MeterRequest(T0 + timedelta(seconds=seconds), context))


def test_no_power_and_no_energy_outside_a_transaction() -> None:
    meter = SimulatedMeter()
    read(meter, 0)
    idle = read(meter, 3600)
    assert (idle.import_wh, idle.export_wh, idle.power_w, idle.soc) == (0, 0, 0, None)


def test_charge_then_discharge_cycle_energy() -> None:
    meter = SimulatedMeter(charge_w=7400, discharge_w=3700, charge_s=900, discharge_s=300)
    begin = read(meter, 0, ReadingContext.TRANSACTION_BEGIN)
    assert begin.power_w == 7400 and begin.soc == 40
    after_charge = read(meter, 900)
    assert after_charge.import_wh == 7400 * 900 // 3600  # 1850 Wh
    assert after_charge.export_wh == 0
    assert after_charge.power_w == -3700
    end = read(meter, 1200, ReadingContext.TRANSACTION_END)
    assert end.import_wh == 1850
    assert end.export_wh == 3700 * 300 // 3600  # 308 Wh (308.33 carried)
    # 40 % of 60 kWh + 1850 - 308.33 Wh = 25541.67 Wh = 42.57 %
    assert end.soc == 42
    idle = read(meter, 5000)
    assert (idle.import_wh, idle.export_wh, idle.power_w) == (1850, 308, 0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=20))
def test_registers_do_not_depend_on_how_often_they_are_read(points: list[int]) -> None:
    stops = sorted(set(points))
    often, once = SimulatedMeter(), SimulatedMeter()
    read(often, 0, ReadingContext.TRANSACTION_BEGIN)
    read(once, 0, ReadingContext.TRANSACTION_BEGIN)
    previous = (0, 0)
    for at in stops:
        got = read(often, at)
        assert got.import_wh >= previous[0] and got.export_wh >= previous[1]
        previous = (got.import_wh, got.export_wh)
    final = read(once, stops[-1])
    assert (final.import_wh, final.export_wh) == previous
