"""NotifyEVChargingNeeds from the EV model: schema-valid 2.1, totals only, energies in Wh."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.messages import Call, validate_payload

from chargepoint.ev import Ev
from chargepoint.v21.needs import charging_needs_call
from tests.chargepoint.fakes import T0, ev_spec


def ev(*, soc: float = 50, max_discharge_w: int = 7000) -> Ev:
    return Ev(ev_spec(T0 + timedelta(hours=8), max_discharge_w), soc_pct=soc, at=T0)


async def body21(payload: Any) -> dict[str, Any]:
    body = remove_nones(snake_to_camel_case(serialize_as_dict(payload)))
    await validate_payload(Call("1", type(payload).__name__, body), "2.1")
    assert isinstance(body, dict)
    return body


async def test_a_bidirectional_ev_states_its_v2x_needs() -> None:
    body = await body21(charging_needs_call(2, ev(soc=50), T0))
    needs = body["chargingNeeds"]
    assert body["evseId"] == 2
    assert needs["requestedEnergyTransfer"] == "AC_BPT"
    assert needs["controlMode"] == "DynamicControl"
    assert needs["departureTime"] == "2026-01-01T20:00:00.000Z"
    v2x = needs["v2xChargingParameters"]
    assert v2x["maxChargePower"] == 11_000 and v2x["maxDischargePower"] == 7000
    assert v2x["evTargetEnergyRequest"] == 18_000  # 50 % -> 80 % of 60 kWh
    assert v2x["evMinEnergyRequest"] == 0  # already above the reserve
    assert v2x["evMaxEnergyRequest"] == 30_000
    assert v2x["evMinV2XEnergyRequest"] == -18_000  # could give back down to 20 %
    assert v2x["targetSoC"] == 80


async def test_below_reserve_the_minimum_is_positive_and_nothing_can_be_given_back() -> None:
    v2x = (await body21(charging_needs_call(1, ev(soc=10), T0)))["chargingNeeds"][
        "v2xChargingParameters"
    ]
    assert v2x["evMinEnergyRequest"] == 6000 and v2x["evMinV2XEnergyRequest"] == 6000


async def test_a_charge_only_ev_asks_for_a_unidirectional_transfer() -> None:
    body = await body21(charging_needs_call(1, ev(max_discharge_w=0), T0))
    assert body["chargingNeeds"]["requestedEnergyTransfer"] == "AC_three_phase"
    assert body["chargingNeeds"]["availableEnergyTransfer"] == ["AC_three_phase"]


async def test_no_per_phase_field_is_ever_sent() -> None:
    text = str(await body21(charging_needs_call(1, ev(), T0)))
    assert "_L2" not in text and "L2" not in text and "L3" not in text
