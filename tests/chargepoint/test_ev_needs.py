"""A 2.0.1 station states its EV's departure and energy to target (NotifyEVChargingNeeds,
an ISO 15118-2 EV) once the transaction's Started event is through, once per transaction,
also when sessions on several EVSEs start at the same moment."""

from __future__ import annotations

import asyncio

from ocpp.v201 import call

from chargepoint.ev_needs import charging_needs_call_201
from chargepoint.metering import ReadingContext
from chargepoint.station import Station
from chargepoint.transaction import IdToken, TriggerReason, TxEvent
from tests.chargepoint.fakes import FakeLink
from tests.chargepoint.v16.builders import make
from tests.chargepoint.v21.test_client import ev_meter


def started(station: Station, evse_id: int) -> TxEvent:
    evse = station.evses[evse_id]
    return evse.begin(
        now=station.clock.now(),
        transaction_id=f"tx-{evse_id}",
        id_token=IdToken("TAG1"),
        trigger=TriggerReason.AUTHORIZED,
        meter=station.sample(evse, ReadingContext.TRANSACTION_BEGIN, "TxStartedMeasurands"),
    )


async def test_two_sessions_starting_together_each_state_their_needs_once() -> None:
    errors: list[object] = []
    station = make(Station, evses=2, meters={1: ev_meter(), 2: ev_meter()}, errors=errors)
    link = FakeLink()
    await station.go_online(link)
    await asyncio.gather(station.submit(started(station, 1)), station.submit(started(station, 2)))
    needs = [p for p in link.sent if isinstance(p, call.NotifyEVChargingNeeds)]
    assert sorted(n.evse_id for n in needs) == [1, 2]
    assert errors == []


def test_201_needs_carry_departure_and_the_energy_to_the_target() -> None:
    meter = ev_meter()  # 60 kWh at 50 %, wanting 80 %, leaving in 8 h, 11 kW
    payload = charging_needs_call_201(1, meter.ev, meter.ev.state.at)
    needs = payload.charging_needs
    assert needs["requested_energy_transfer"] == "AC_three_phase"
    assert needs["ac_charging_parameters"]["energy_amount"] == round(
        meter.ev.spec.capacity_wh * (meter.ev.spec.target_soc_pct - 50) / 100
    )
    assert needs["ac_charging_parameters"]["ev_max_current"] == 16  # 11 kW on 3 x 230 V
    assert needs["departure_time"].endswith("Z")
