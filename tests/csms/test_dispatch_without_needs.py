"""A 2.0.1 station declared to take a negative limit as discharge, and the real dispatcher
under a tariff where exporting pays all day.

Without the EV's charging needs the dispatcher knows no departure: it discharges only energy
the session itself put in, never below what the EV arrived with. With 2.0.1 needs (an ISO
15118-2 EV stating its departure and energy) it plans the session whole and keeps that target.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result

from csms.app import CsmsApp
from csms.dispatch import DispatchPolicy
from csms.dispatching import Dispatcher, DispatchSettings
from csms.model import NEGATIVE_LIMIT_201, TokenRecord
from csms.tariffs import parse_tariff
from tests.csms.conftest import STATION
from tests.csms.library_station import library_station
from tests.csms.test_ocpp21_ev_limits import EXPORT_PAYS

TAG = "TAG201"
POLICY = DispatchPolicy(export_threshold=300_000, charge_w=11_000, discharge_w=7_000)


class Station201(ChargePoint):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits: list[float] = []
        self.starts: list[int] = []  # each period's startPeriod

    @on("SetChargingProfile")
    async def on_set_charging_profile(self, charging_profile: dict[str, Any], **_: Any) -> Any:
        for schedule in charging_profile["charging_schedule"]:
            self.limits += [p["limit"] for p in schedule["charging_schedule_period"]]
            self.starts += [p["start_period"] for p in schedule["charging_schedule_period"]]
        return call_result.SetChargingProfile(status="Accepted")


@pytest.fixture
async def station(csms: CsmsApp) -> AsyncIterator[Station201]:
    await csms.store.add_token(TokenRecord(TAG, "ISO14443", "Accepted", "invoice", None, "t"))
    await csms.store.set_station_caps(STATION, discharge=NEGATIVE_LIMIT_201)
    async with library_station(csms, Station201, ["ocpp2.0.1"], "ocpp2.0.1") as cp:
        yield cp


def reading(at: str, import_wh: int, export_wh: int, soc: int) -> dict[str, Any]:
    def value(measurand: str, amount: int, unit: str) -> dict[str, Any]:
        return {"value": amount, "measurand": measurand, "unit_of_measure": {"unit": unit}}

    return {
        "timestamp": at,
        "sampled_value": [
            value("Energy.Active.Import.Register", import_wh, "Wh"),
            value("Energy.Active.Export.Register", export_wh, "Wh"),
            value("SoC", soc, "Percent"),
        ],
    }


def event(kind: str, seq: int, at: str, **extra: Any) -> call.TransactionEvent:
    trigger = {"Started": "Authorized", "Updated": "MeterValuePeriodic"}[kind]
    return call.TransactionEvent(
        event_type=kind,
        seq_no=seq,
        timestamp=at,
        trigger_reason=trigger,
        transaction_info={"transaction_id": "tx-201"},
        evse={"id": 1, "connector_id": 1},
        **extra,
    )


async def dispatch(csms: CsmsApp, station: Station201, readings: list[tuple[int, int]]) -> None:
    """Start at 10:00 with 10 kWh on the import register, then one reading and one dispatch
    pass per quarter hour with the registers given."""
    dispatcher = Dispatcher(
        csms.server,
        parse_tariff(EXPORT_PAYS, source="export-pays.yaml"),
        DispatchSettings(POLICY, reserve_soc_pct=30, interval=3600),
    )
    t0 = "2026-11-25T10:00:00.000Z"
    token = {"id_token": TAG, "type": "ISO14443"}
    await station.call(
        event("Started", 0, t0, id_token=token, meter_value=[reading(t0, 10_000, 0, 60)])
    )
    for n, (import_wh, export_wh) in enumerate(readings, start=1):
        at = f"2026-11-25T{10 + n // 4:02d}:{15 * (n % 4):02d}:00.000Z"
        meter = [reading(at, import_wh, export_wh, 60)]
        await station.call(event("Updated", n, at, meter_value=meter))
        await dispatcher.run_once()


async def test_an_ev_without_needs_is_not_discharged_below_its_arrival_energy(
    csms: CsmsApp, station: Station201
) -> None:
    await dispatch(csms, station, [(10_000, 0)])
    assert station.limits == [11_000]  # nothing delivered yet: charge, though exporting pays


async def test_an_ev_without_needs_gives_back_only_what_it_was_given(
    csms: CsmsApp, station: Station201
) -> None:
    # it took 6 kWh. A look every quarter hour: a discharge decided now may last until a
    # decision on the next reading arrives, 45 min at most (the reading gap plus twice the
    # cadence), 5.25 kWh at 7 kW: that fits once (the first look only charges), not after
    await dispatch(csms, station, [(16_000, 0), (16_000, 0), (16_000, 1_750)])
    assert station.limits == [11_000, -7_000, 11_000], station.limits


async def test_a_201_ev_with_needs_keeps_its_departure_target(
    csms: CsmsApp, station: Station201
) -> None:
    # 20 kWh by 12:00 at 11 kW from 10:00: at 10:15, with 0.5 kWh in, no room to discharge
    needs = {
        "requested_energy_transfer": "AC_three_phase",
        "departure_time": "2026-11-25T12:00:00.000Z",
        "ac_charging_parameters": {
            "energy_amount": 20_000,
            "ev_min_current": 6,
            "ev_max_current": 16,
            "ev_max_voltage": 400,
        },
    }
    t0 = "2026-11-25T10:00:00.000Z"
    await station.call(
        event("Started", 0, t0, id_token={"id_token": TAG, "type": "ISO14443"},
              meter_value=[reading(t0, 10_000, 0, 60)])
    )  # fmt: skip
    await station.call(call.NotifyEVChargingNeeds(charging_needs=needs, evse_id=1))
    dispatcher = Dispatcher(
        csms.server,
        parse_tariff(EXPORT_PAYS, source="export-pays.yaml"),
        DispatchSettings(POLICY, reserve_soc_pct=30, interval=3600),
    )
    at = "2026-11-25T10:15:00.000Z"
    await station.call(event("Updated", 1, at, meter_value=[reading(at, 10_500, 0, 61)]))
    await dispatcher.run_once()
    assert station.limits == [11_000]


EVENING_PEAK = b"""\
id: noon-peak
currency: EUR
timezone: UTC
daily:
  - {start: "00:00", import_price: 180000, export_price: 60000}
  - {start: "12:00", import_price: 390000, export_price: 420000}
  - {start: "13:00", import_price: 180000, export_price: 60000}
"""


async def test_a_201_ev_with_needs_gets_one_schedule_to_its_departure(
    csms: CsmsApp, station: Station201
) -> None:
    """The dispatcher plans the session whole from the EV's needs and sends it once, as one
    schedule in station time: the station follows it at the instants it names, however
    rarely the dispatcher looks or however late a message arrives. Only an EV that falls
    off the plan gets a new one, planned from its latest reading."""
    needs = {
        "requested_energy_transfer": "AC_three_phase",
        "departure_time": "2026-11-25T14:00:00.000Z",
        "ac_charging_parameters": {
            "energy_amount": 5_000,
            "ev_min_current": 6,
            "ev_max_current": 16,
            "ev_max_voltage": 400,
        },
    }
    token = {"id_token": TAG, "type": "ISO14443"}
    t0 = "2026-11-25T10:00:00.000Z"
    await station.call(event("Started", 0, t0, id_token=token, meter_value=[reading(t0, 0, 0, 50)]))
    await station.call(call.NotifyEVChargingNeeds(charging_needs=needs, evse_id=1))
    dispatcher = Dispatcher(
        csms.server,
        parse_tariff(EVENING_PEAK, source="noon-peak.yaml"),
        DispatchSettings(POLICY, reserve_soc_pct=30, interval=3600),
    )
    await dispatcher.run_once()
    # charge to noon (22 kWh in), give 7 kWh back in the peak hour, charge to departure
    assert station.limits == [11_000, -7_000, 11_000]
    assert station.starts == [0, 2 * 3600, 3 * 3600]
    for seq, (at, imported, exported) in enumerate(
        [("10:05", 917, 0), ("12:00", 22_000, 0), ("12:30", 22_000, 3_500)], start=1
    ):  # the EV keeps to its schedule: nothing more is sent
        stamp = f"2026-11-25T{at}:00.000Z"
        meter = [reading(stamp, imported, exported, 60)]
        await station.call(event("Updated", seq, stamp, meter_value=meter))
        await dispatcher.run_once()
    assert len(station.limits) == 3


async def test_an_ev_that_falls_off_its_schedule_gets_a_new_one(
    csms: CsmsApp, station: Station201
) -> None:
    needs = {
        "requested_energy_transfer": "AC_three_phase",
        "departure_time": "2026-11-25T14:00:00.000Z",
        "ac_charging_parameters": {
            "energy_amount": 5_000,
            "ev_min_current": 6,
            "ev_max_current": 16,
            "ev_max_voltage": 400,
        },
    }
    token = {"id_token": TAG, "type": "ISO14443"}
    t0 = "2026-11-25T10:00:00.000Z"
    await station.call(event("Started", 0, t0, id_token=token, meter_value=[reading(t0, 0, 0, 50)]))
    await station.call(call.NotifyEVChargingNeeds(charging_needs=needs, evse_id=1))
    dispatcher = Dispatcher(
        csms.server,
        parse_tariff(EVENING_PEAK, source="noon-peak.yaml"),
        DispatchSettings(POLICY, reserve_soc_pct=30, interval=3600),
    )
    await dispatcher.run_once()
    # it took only 2 kWh by noon: an hour of discharge would take it below its arrival energy
    at = "2026-11-25T12:00:00.000Z"
    await station.call(event("Updated", 1, at, meter_value=[reading(at, 2_000, 0, 52)]))
    await dispatcher.run_once()
    # planned again from noon: give back the 2 kWh (17 min 8 s at 7 kW), then charge
    assert station.limits[3:] == [-7_000, 11_000]
    assert station.starts[3:] == [0, 2_000 * 3600 // 7_000]
