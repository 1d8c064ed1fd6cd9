"""StationClient16 answers the CSMS's 1.6 calls, raw frames in and out (no sockets)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from ocpp.v201 import call as v201_call

from chargepoint.metering import ReadingContext
from chargepoint.transaction import IdToken, TriggerReason
from chargepoint.v16.client import StationClient16
from chargepoint.v16.payloads import boot_notification_call
from chargepoint.v16.station import Station16
from tests.chargepoint.test_client import FakeConnection, csms_call, next_out
from tests.chargepoint.v16.builders import SteerableMeter, make


@dataclass
class Live:
    station: Station16
    client: StationClient16
    conn: FakeConnection
    meter: SteerableMeter

    async def ask(self, action: str, payload: dict[str, Any]) -> list[Any]:
        """Send one CSMS call and return the station's answer frame."""
        return await csms_call(self.conn, action, payload)

    async def go_online(self) -> None:
        """Bring the station online on this client, answering its StatusNotification."""
        online = asyncio.create_task(self.station.go_online(self.client))
        status = await next_out(self.conn)
        assert status[2] == "StatusNotification" and status[3]["status"] == "Available"
        await self.conn.inbox.put(json.dumps([3, status[1], {}]))
        await online


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    meter = SteerableMeter()
    station = make(Station16, meters={1: meter})
    conn = FakeConnection()
    client = StationClient16(station, conn, response_timeout=2)
    serving = asyncio.create_task(client.start())
    yield Live(station, client, conn, meter)
    serving.cancel()
    await station.shutdown()


async def test_a_20_only_action_is_not_routed(live: Live) -> None:
    frame = await live.ask("GetVariables", {"getVariableData": []})
    assert frame[0] == 4 and frame[2] in ("NotSupported", "NotImplemented")


async def test_change_and_get_configuration(live: Live) -> None:
    assert (await live.ask("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "0"}))[
        2
    ] == {"status": "Rejected"}
    ok = await live.ask("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "45"})
    assert ok[2] == {"status": "Accepted"}
    frame = await live.ask("GetConfiguration", {"key": ["HeartbeatInterval", "Nope"]})
    assert frame[2]["configurationKey"] == [
        {"key": "HeartbeatInterval", "readonly": False, "value": "45"}
    ]
    assert frame[2]["unknownKey"] == ["Nope"]


async def test_remote_stop_of_an_unknown_transaction_is_rejected(live: Live) -> None:
    frame = await live.ask("RemoteStopTransaction", {"transactionId": 99})
    assert frame[2] == {"status": "Rejected"}


async def test_remote_start_claims_the_connector_then_starts_a_transaction(live: Live) -> None:
    await live.go_online()
    frame = await live.ask("RemoteStartTransaction", {"idTag": "TAG1", "connectorId": 1})
    assert frame[2] == {"status": "Accepted"}
    status = await next_out(live.conn)
    assert status[2] == "StatusNotification" and status[3]["status"] == "Preparing"
    await live.conn.inbox.put(json.dumps([3, status[1], {}]))
    start = await next_out(live.conn)
    assert start[2] == "StartTransaction" and start[3]["idTag"] == "TAG1"
    busy = await live.ask("RemoteStartTransaction", {"idTag": "TAG2", "connectorId": 1})
    assert busy[2] == {"status": "Rejected"}


def charging_profile(limit: float) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
            },
        },
    }


def begin(live: Live) -> None:
    """A transaction runs on connector 1; the CSMS numbered it 42."""
    evse = live.station.evses[1]
    evse.begin(
        now=live.station.clock.now(),
        transaction_id="tx-1",
        id_token=IdToken("TAG1"),
        trigger=TriggerReason.AUTHORIZED,
        meter=live.station.sample(evse, ReadingContext.TRANSACTION_BEGIN, "TxStartedMeasurands"),
    )
    live.station.csms_ids["tx-1"] = 42


async def test_set_charging_profile_limits_the_ev_and_refuses_discharge(live: Live) -> None:
    begin(live)
    assert (await live.ask("SetChargingProfile", charging_profile(3700.0)))[2] == {
        "status": "Accepted"
    }
    assert live.meter.limits[-1] == 3700
    assert (await live.ask("SetChargingProfile", charging_profile(-3700.0)))[2] == {
        "status": "Rejected"
    }
    assert live.meter.limits[-1] == 3700


async def test_a_tx_profile_needs_its_transaction_running_here(live: Live) -> None:
    request = charging_profile(3700.0)
    profile = request["csChargingProfiles"]
    profile["chargingProfilePurpose"] = "TxProfile"
    profile["transactionId"] = 42
    assert (await live.ask("SetChargingProfile", request))[2] == {"status": "Rejected"}
    begin(live)
    profile["transactionId"] = 41
    assert (await live.ask("SetChargingProfile", request))[2] == {"status": "Rejected"}
    profile["transactionId"] = 42
    assert (await live.ask("SetChargingProfile", request))[2] == {"status": "Accepted"}
    assert live.meter.limits[-1] == 3700


async def test_clear_charging_profile_lifts_the_limit(live: Live) -> None:
    begin(live)
    await live.ask("SetChargingProfile", charging_profile(3700.0))
    assert (await live.ask("ClearChargingProfile", {"id": 1}))[2] == {"status": "Accepted"}
    assert live.meter.limits[-1] is None  # the EV's own maximum again
    assert (await live.ask("ClearChargingProfile", {"id": 1}))[2] == {"status": "Unknown"}


async def test_charge_point_max_profile_is_not_supported(live: Live) -> None:
    request = charging_profile(11000.0)
    request["connectorId"] = 0
    request["csChargingProfiles"]["chargingProfilePurpose"] = "ChargePointMaxProfile"
    assert (await live.ask("SetChargingProfile", request))[2] == {"status": "Rejected"}


async def test_reset_is_accepted_and_reboots(live: Live) -> None:
    frame = await live.ask("Reset", {"type": "Soft"})
    assert frame[2] == {"status": "Accepted"}
    assert live.station.reset_reason == "SoftReset"
    await asyncio.wait_for(live.station.reboot.wait(), 2)


async def test_trigger_message_sends_the_message_after_answering(live: Live) -> None:
    await live.go_online()
    frame = await live.ask("TriggerMessage", {"requestedMessage": "Heartbeat"})
    assert frame[2] == {"status": "Accepted"}
    heartbeat = await next_out(live.conn)
    assert heartbeat[0] == 2 and heartbeat[2] == "Heartbeat"
    unknown = await live.ask(
        "TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 9}
    )
    assert unknown[2] == {"status": "Rejected"}


async def test_data_transfer_knows_no_vendor_extension(live: Live) -> None:
    frame = await live.ask("DataTransfer", {"vendorId": "acme", "messageId": "x"})
    assert frame[2] == {"status": "UnknownVendorId"}
    own = await live.ask("DataTransfer", {"vendorId": "v2g-bridge", "messageId": "x"})
    assert own[2] == {"status": "UnknownMessageId"}


async def test_change_availability_of_connector_zero_is_the_whole_station(live: Live) -> None:
    frame = await live.ask("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})
    assert frame[2] == {"status": "Accepted"}
    assert not live.station.evses[1].operative


async def test_malformed_call_gets_a_16_callerror(live: Live) -> None:
    frame = await live.ask("ChangeConfiguration", {"key": "HeartbeatInterval"})
    assert frame[0] == 4 and frame[2] == "ProtocolError"  # a required field is missing (1.6)


async def test_the_runners_heartbeat_and_boot_go_out_as_16(live: Live) -> None:
    """The shared runner sends ``ocpp.v201`` Heartbeat objects: valid 1.6 by name and body."""
    pending = asyncio.create_task(live.client.send(v201_call.Heartbeat()))
    frame = await next_out(live.conn)
    assert frame[2:] == ["Heartbeat", {}]
    await live.conn.inbox.put(json.dumps([3, frame[1], {"currentTime": "2026-01-01T12:00:00Z"}]))
    assert (await pending).current_time == "2026-01-01T12:00:00Z"
    boot = asyncio.create_task(
        live.client.send(boot_notification_call(vendor="v", model="m", serial="s"))
    )
    frame = await next_out(live.conn)
    assert frame[3]["chargePointVendor"] == "v"
    answer = {"status": "Accepted", "currentTime": "2026-01-01T12:00:00Z", "interval": 30}
    await live.conn.inbox.put(json.dumps([3, frame[1], answer]))
    assert (await boot).interval == 30
