"""Hypothesis fuzzing of the 2.1 station's handlers (see ``tests.chargepoint.fuzzing``):
SetChargingProfile with operation modes and per-phase fields, NotifyAllowedEnergyTransfer,
and the 2.0.1 handlers it answers 2.1 with."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chargepoint.v21.client import StationClient21
from chargepoint.v21.station import Station21
from tests.chargepoint.fuzzing import answer_one, drop_some, maybe, numbers
from tests.chargepoint.test_client import FakeConnection
from tests.chargepoint.v16.builders import SteerableMeter, make

MODES = ["Idle", "ChargingOnly", "CentralSetpoint", "ExternalSetpoint", "LocalFrequency"]
TRANSFERS = ["AC_single_phase", "AC_three_phase", "AC_BPT", "DC", "DC_BPT"]
evse = maybe(st.integers(min_value=0, max_value=3))
transaction = maybe(st.sampled_from(["tx-1", "tx-2"]) | st.text(max_size=40))
phased = {
    f"{name}{suffix}": maybe(numbers)
    for name in ("limit", "setpoint", "dischargeLimit")
    for suffix in ("", "_L2", "_L3")
}
period = st.fixed_dictionaries(
    {"startPeriod": maybe(st.integers(min_value=0, max_value=7200))},
    optional={
        **phased,
        "operationMode": maybe(st.sampled_from(MODES)),
        "numberPhases": maybe(st.integers(min_value=0, max_value=4)),
    },
)
schedule = st.fixed_dictionaries(
    {
        "id": maybe(st.integers(min_value=0, max_value=5)),
        "chargingRateUnit": maybe(st.sampled_from(["W", "A"])),
        "chargingSchedulePeriod": maybe(st.lists(period, min_size=1, max_size=3)),
    },
    optional={"startSchedule": maybe(st.just("2026-01-01T11:50:00Z") | st.text(max_size=25))},
)
profile = st.fixed_dictionaries(
    {
        "id": maybe(st.integers(min_value=0, max_value=5)),
        "stackLevel": maybe(st.integers(min_value=0, max_value=5)),
        "chargingProfilePurpose": maybe(
            st.sampled_from(["TxProfile", "TxDefaultProfile", "ChargingStationMaxProfile"])
        ),
        "chargingProfileKind": maybe(st.sampled_from(["Absolute", "Relative", "Dynamic"])),
        "chargingSchedule": maybe(st.lists(schedule, min_size=1, max_size=2)),
    },
    optional={"transactionId": transaction},
)
id_token = st.fixed_dictionaries(
    {
        "idToken": maybe(st.text(max_size=40)),
        "type": maybe(st.sampled_from(["ISO14443", "Central"])),
    }
)
calls: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "SetChargingProfile": st.fixed_dictionaries({"evseId": evse, "chargingProfile": profile}),
    "NotifyAllowedEnergyTransfer": st.fixed_dictionaries(
        {
            "transactionId": transaction,
            "allowedEnergyTransfer": maybe(st.lists(st.sampled_from(TRANSFERS), max_size=3)),
        }
    ),
    "RequestStartTransaction": st.fixed_dictionaries(
        {"idToken": id_token, "remoteStartId": maybe(st.integers(0, 9))}, optional={"evseId": evse}
    ),
    "RequestStopTransaction": st.fixed_dictionaries({"transactionId": transaction}),
    "TriggerMessage": st.fixed_dictionaries(
        {
            "requestedMessage": maybe(
                st.sampled_from(
                    ["Heartbeat", "StatusNotification", "MeterValues", "LogStatusNotification"]
                )
            )
        }
    ),
}
frames = st.sampled_from(sorted(calls)).flatmap(
    lambda action: st.tuples(st.just(action), drop_some(calls[action]))
)


def build() -> tuple[Station21, StationClient21, FakeConnection]:
    station = make(
        Station21, evses=2, meters={1: SteerableMeter(), 2: SteerableMeter()}, ocpp_version="2.1"
    )
    conn = FakeConnection()
    return station, StationClient21(station, conn, response_timeout=1), conn


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames)
def test_every_21_call_gets_one_answer_of_the_right_kind(frame: tuple[str, dict[str, Any]]) -> None:
    action, payload = frame
    answer_one(build, action, payload, "2.1")
