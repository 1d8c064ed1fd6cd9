from __future__ import annotations

import asyncio

from chargepoint import availability, provisioning, remote_control
from chargepoint.sessions import run_session
from chargepoint.transaction import IdToken, TriggerReason
from tests.chargepoint.fakes import FakeLink, make_station
from tests.chargepoint.test_transaction import sample

TOKEN = IdToken("REMOTE", "Central")


async def test_remote_start_claims_an_evse_before_answering() -> None:
    station = make_station(evses=2)
    first, start1 = remote_control.request_start(station, TOKEN, 1, None)
    second, start2 = remote_control.request_start(station, TOKEN, 2, None)
    third, start3 = remote_control.request_start(station, TOKEN, 3, None)
    assert (first.status, second.status, third.status) == ("Accepted", "Accepted", "Rejected")
    assert start1 is not None and start2 is not None and start3 is None
    assert not station.evses[1].idle and not station.evses[2].idle
    busy, _ = remote_control.request_start(station, TOKEN, 4, 1)
    assert busy.status == "Rejected"


async def test_remote_start_then_stop_ends_with_remote_reason() -> None:
    station = make_station(session_seconds=10_000)
    link = FakeLink()
    await station.go_online(link)
    result, start = remote_control.request_start(station, TOKEN, 5, 1)
    assert result.status == "Accepted" and start is not None
    session = asyncio.create_task(start())
    while not station.running_transactions():
        await asyncio.sleep(0)
    tx_id = station.running_transactions()[0]
    unknown, none = remote_control.request_stop(station, "nope")
    assert unknown.status == "Rejected" and none is None
    accepted, stop = remote_control.request_stop(station, tx_id)
    assert accepted.status == "Accepted" and stop is not None
    await stop()
    await asyncio.wait_for(session, 5)
    tx_events = [p for p in link.sent if type(p).__name__ == "TransactionEvent"]
    assert tx_events[0].trigger_reason == "RemoteStart"
    assert tx_events[0].transaction_info["remote_start_id"] == 5
    assert tx_events[-1].trigger_reason == "RemoteStop"
    assert tx_events[-1].transaction_info["stopped_reason"] == "Remote"
    assert "Authorize" not in link.actions()  # AuthorizeRemoteStart is false by default


async def test_trigger_message_statuses() -> None:
    station = make_station()
    await station.go_online(FakeLink())
    status = {
        name: remote_control.trigger_message(station, name, None)[0].status
        for name in (
            "BootNotification",
            "Heartbeat",
            "StatusNotification",
            "MeterValues",
            "TransactionEvent",
            "LogStatusNotification",
            "FirmwareStatusNotification",
            "SignChargingStationCertificate",
            "SignV2GCertificate",
            "SignCombinedCertificate",
            "PublishFirmwareStatusNotification",
        )
    }
    assert status == {
        "BootNotification": "Rejected",
        "Heartbeat": "Accepted",
        "StatusNotification": "Accepted",
        "MeterValues": "Accepted",
        "TransactionEvent": "Rejected",
        "LogStatusNotification": "Accepted",
        "FirmwareStatusNotification": "Accepted",
        "SignChargingStationCertificate": "Accepted",
        "SignV2GCertificate": "Accepted",
        "SignCombinedCertificate": "Accepted",
        "PublishFirmwareStatusNotification": "NotImplemented",  # not a local controller
    }
    assert remote_control.trigger_message(station, "Heartbeat", 9)[0].status == "Rejected"


async def test_change_availability_whole_station_and_scheduled() -> None:
    station = make_station(evses=2)
    link = FakeLink()
    await station.go_online(link)
    station.evses[2].plug_in()

    station.evses[2].begin(
        now=station.clock.now(),
        transaction_id="t",
        id_token=TOKEN,
        trigger=TriggerReason.AUTHORIZED,
        meter=sample(station.clock.now()),
    )
    result, report = availability.change_availability(station, False, None, None)
    assert result.status == "Scheduled"
    assert report is not None
    await report()
    assert link.sent[-1].evse_id == 1 and link.sent[-1].connector_status == "Unavailable"
    assert station.device_model.read("ChargingStation", "AvailabilityState") == "Unavailable"
    bad, _ = availability.change_availability(station, True, 3, None)
    assert bad.status == "Rejected"
    wrong_connector, _ = availability.change_availability(station, True, 1, 2)
    assert wrong_connector.status == "Rejected"


async def test_reset_on_idle_waits_and_evse_reset_is_refused() -> None:
    station = make_station()
    result, follow = provisioning.reset(station, "OnIdle", None)
    assert result.status == "Accepted" and follow is not None
    await follow()
    assert station.reboot.is_set()
    refused, _ = provisioning.reset(station, "Immediate", 1)
    assert refused.status == "Rejected"


async def test_scheduled_reset_happens_when_the_last_transaction_ends() -> None:
    station = make_station(session_seconds=10_000)
    await station.go_online(FakeLink())
    _, start = remote_control.request_start(station, TOKEN, 1, 1)
    assert start is not None
    session = asyncio.create_task(start())
    while not station.running_transactions():
        await asyncio.sleep(0)
    result, follow = provisioning.reset(station, "OnIdle", None)
    assert result.status == "Scheduled" and follow is None
    assert not station.reboot.is_set()
    _, stop = remote_control.request_stop(station, station.running_transactions()[0])
    assert stop is not None
    await stop()
    await asyncio.wait_for(session, 5)
    await asyncio.wait_for(station.reboot.wait(), 5)
    assert station.reset_pending is False


async def test_local_session_skips_authorize_when_auth_is_disabled() -> None:

    station = make_station()
    station.device_model.write("AuthCtrlr", "Enabled", "false")
    link = FakeLink()
    await station.go_online(link)
    assert await run_session(station, station.evses[1], TOKEN, seconds=60)
    assert "Authorize" not in link.actions()
    assert "TransactionEvent" in link.actions()
