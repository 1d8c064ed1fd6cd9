"""Hypothesis fuzzing of every 1.6 handler of the station (see ``tests.chargepoint.fuzzing``)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chargepoint.v16.client import StationClient16
from chargepoint.v16.station import Station16
from tests.chargepoint.fuzzing import answer_one, drop_some, maybe, numbers
from tests.chargepoint.test_client import FakeConnection
from tests.chargepoint.v16.builders import SteerableMeter, make

connector = maybe(st.integers(min_value=-1, max_value=3))
period = st.fixed_dictionaries(
    {"startPeriod": maybe(st.integers(min_value=0, max_value=7200)), "limit": maybe(numbers)},
    optional={"numberPhases": maybe(st.integers(min_value=0, max_value=4))},
)
profile = st.fixed_dictionaries(
    {
        "chargingProfileId": maybe(st.integers(min_value=0, max_value=10)),
        "stackLevel": maybe(st.integers(min_value=0, max_value=10)),
        "chargingProfilePurpose": maybe(
            st.sampled_from(["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"])
        ),
        "chargingProfileKind": maybe(st.sampled_from(["Absolute", "Recurring", "Relative"])),
        "chargingSchedule": st.fixed_dictionaries(
            {
                "chargingRateUnit": maybe(st.sampled_from(["W", "A"])),
                "chargingSchedulePeriod": maybe(st.lists(period, max_size=3)),
            },
            optional={
                "startSchedule": maybe(st.just("2026-01-01T11:50:00Z") | st.text(max_size=25)),
                "duration": maybe(st.integers(min_value=0, max_value=7200)),
            },
        ),
    },
    optional={
        "transactionId": maybe(st.integers(min_value=0, max_value=50)),
        "recurrencyKind": maybe(st.sampled_from(["Daily", "Weekly"])),
        "validTo": maybe(st.just("2026-01-01T13:00:00Z")),
    },
)
calls: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "RemoteStartTransaction": st.fixed_dictionaries(
        {"idTag": maybe(st.text(max_size=25))}, optional={"connectorId": connector}
    ),
    "RemoteStopTransaction": st.fixed_dictionaries({"transactionId": maybe(st.integers())}),
    "ChangeConfiguration": st.fixed_dictionaries(
        {
            "key": maybe(
                st.sampled_from(
                    ["HeartbeatInterval", "MeterValuesSampledData", "NumberOfConnectors"]
                )
                | st.text(max_size=60)
            ),
            "value": maybe(st.text(max_size=40) | st.integers().map(str)),
        }
    ),
    "GetConfiguration": st.fixed_dictionaries(
        {}, optional={"key": maybe(st.lists(st.text(max_size=55), max_size=3))}
    ),
    "SetChargingProfile": st.fixed_dictionaries(
        {"connectorId": connector, "csChargingProfiles": maybe(profile)}
    ),
    "ClearChargingProfile": st.fixed_dictionaries(
        {},
        optional={
            "id": maybe(st.integers(min_value=0, max_value=5)),
            "connectorId": connector,
            "chargingProfilePurpose": maybe(st.sampled_from(["TxDefaultProfile", "TxProfile"])),
            "stackLevel": maybe(st.integers(min_value=0, max_value=5)),
        },
    ),
    "Reset": st.fixed_dictionaries({"type": maybe(st.sampled_from(["Hard", "Soft"]))}),
    "TriggerMessage": st.fixed_dictionaries(
        {
            "requestedMessage": maybe(
                st.sampled_from(
                    [
                        "BootNotification",
                        "DiagnosticsStatusNotification",
                        "FirmwareStatusNotification",
                        "Heartbeat",
                        "MeterValues",
                        "StatusNotification",
                    ]
                )
            )
        },
        optional={"connectorId": connector},
    ),
    "ChangeAvailability": st.fixed_dictionaries(
        {"connectorId": connector, "type": maybe(st.sampled_from(["Operative", "Inoperative"]))}
    ),
    "DataTransfer": st.fixed_dictionaries(
        {"vendorId": maybe(st.text(max_size=260))},
        optional={"messageId": maybe(st.text(max_size=60)), "data": maybe(st.text(max_size=20))},
    ),
}
frames = st.sampled_from(sorted(calls)).flatmap(
    lambda action: st.tuples(st.just(action), drop_some(calls[action]))
)


def build() -> tuple[Station16, StationClient16, FakeConnection]:
    station = make(Station16, evses=2, meters={1: SteerableMeter(), 2: SteerableMeter()})
    conn = FakeConnection()
    return station, StationClient16(station, conn, response_timeout=1), conn


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames)
@example(  # a limit too large for the decimal multipleOf check gets its CALLERROR
    (
        "SetChargingProfile",
        {
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1e27}],
                },
            },
        },
    )
)
def test_every_16_call_gets_one_answer_of_the_right_kind(frame: tuple[str, dict[str, Any]]) -> None:
    action, payload = frame
    answer_one(build, action, payload, "1.6")
