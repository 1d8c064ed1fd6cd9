"""The station's local list, composite schedule, log upload, firmware update and certificate
requests, against the independent strict 2.0.1 CSMS over real sockets on 127.0.0.1: every
request and every answer is checked against the official schemas on the way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.v201 import call

from chargepoint.charging_profiles import RATED_POWER_W
from chargepoint.runner import StationRunner
from tests.chargepoint.strict_csms import StrictCsms
from tests.chargepoint.test_against_strict_csms import STATION, assert_clean_wire, config
from tests.chargepoint.test_against_strict_csms import csms as csms


@pytest.fixture
async def running(csms: StrictCsms) -> AsyncIterator[StationRunner]:
    runner = StationRunner(config(csms, sessions=0, exit_when_done=False, speed=600))
    run = asyncio.create_task(runner.run())
    await csms.wait_for(lambda: "StatusNotification" in csms.state.actions(), what="boot")
    yield runner
    run.cancel()
    await asyncio.gather(run, return_exceptions=True)


def statuses(csms: StrictCsms, action: str, request_id: int | None) -> list[str]:
    return [p["status"] for p in csms.state.of(action) if p.get("requestId") == request_id]


def entry(token: str, status: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"id_token": {"id_token": token, "type": "ISO14443"}}
    if status is not None:
        item["id_token_info"] = {"status": status}
    return item


async def test_the_local_list_keeps_entries_and_its_version(
    csms: StrictCsms,
    running: StationRunner,
) -> None:
    got = await csms.call(STATION, call.GetLocalListVersion())
    assert got.version_number == 0
    full = call.SendLocalList(
        version_number=3,
        update_type="Full",
        local_authorization_list=[entry("AA01", "Accepted"), entry("AA02", "Blocked")],
    )
    assert (await csms.call(STATION, full)).status == "Accepted"
    assert (await csms.call(STATION, call.GetLocalListVersion())).version_number == 3
    stale = call.SendLocalList(
        version_number=3,
        update_type="Differential",
        local_authorization_list=[entry("B", "Accepted")],
    )
    refused = await csms.call(STATION, stale)
    assert refused.status == "VersionMismatch"
    remove = call.SendLocalList(
        version_number=4,
        update_type="Differential",
        local_authorization_list=[entry("AA02", None), entry("AA03", "Accepted")],
    )
    assert (await csms.call(STATION, remove)).status == "Accepted"
    assert (await csms.call(STATION, call.GetLocalListVersion())).version_number == 4
    local = running.station.local_list
    assert local.lookup("AA01", "ISO14443") is not None
    assert local.lookup("AA02", "ISO14443") is None
    assert local.lookup("AA03", "ISO14443") is not None
    too_many = call.SendLocalList(
        version_number=5,
        update_type="Full",
        local_authorization_list=[entry(f"T{n}", "Accepted") for n in range(local.capacity + 1)],
    )
    assert (await csms.call(STATION, too_many)).status == "Failed"
    assert (await csms.call(STATION, call.GetLocalListVersion())).version_number == 4
    got = await csms.call(
        STATION,
        call.GetVariables(
            get_variable_data=[
                {"component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": "Entries"}}
            ]
        ),
    )
    assert got.get_variable_result[0]["attribute_value"] == "2"
    assert_clean_wire(csms.state)


async def test_the_composite_schedule_comes_from_the_profiles_held(
    csms: StrictCsms,
    running: StationRunner,
) -> None:
    got = await csms.call(STATION, call.GetCompositeSchedule(duration=3600, evse_id=1))
    assert got.status == "Accepted"
    assert got.schedule["charging_schedule_period"] == [{"start_period": 0, "limit": RATED_POWER_W}]
    start = running.station.clock.now().replace(microsecond=0) + timedelta(seconds=10)
    profile = {
        "id": 7,
        "stack_level": 0,
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_profile_kind": "Absolute",
        "charging_schedule": [
            {
                "id": 1,
                "start_schedule": start.isoformat().replace("+00:00", "Z"),
                "charging_rate_unit": "W",
                "charging_schedule_period": [
                    {"start_period": 0, "limit": 11000},
                    {"start_period": 1800, "limit": 4000},
                ],
                "duration": 3600,
            }
        ],
    }
    set_result = await csms.call(
        STATION, call.SetChargingProfile(evse_id=0, charging_profile=profile)
    )
    assert set_result.status == "Accepted"
    got = await csms.call(STATION, call.GetCompositeSchedule(duration=7200, evse_id=1))
    schedule = got.schedule
    assert got.status == "Accepted" and schedule["charging_rate_unit"] == "W"
    begin = datetime.fromisoformat(schedule["schedule_start"])
    offset = int((start - begin).total_seconds())  # the station clock ran meanwhile
    assert 0 < offset <= 10
    assert schedule["charging_schedule_period"] == [
        {"start_period": 0, "limit": RATED_POWER_W},
        {"start_period": offset, "limit": 11000},
        {"start_period": offset + 1800, "limit": 4000},
        {"start_period": offset + 3600, "limit": RATED_POWER_W},
    ]
    in_amps = await csms.call(
        STATION, call.GetCompositeSchedule(duration=60, evse_id=0, charging_rate_unit="A")
    )
    assert in_amps.schedule["charging_schedule_period"][0]["number_phases"] == 3
    unknown = await csms.call(STATION, call.GetCompositeSchedule(duration=60, evse_id=9))
    assert unknown.status == "Rejected"
    assert_clean_wire(csms.state)


async def test_get_log_uploads_and_reports_each_step(
    csms: StrictCsms,
    running: StationRunner,
) -> None:
    good = {"remote_location": "https://logs.example.com/upload"}
    got = await csms.call(STATION, call.GetLog(log=good, log_type="DiagnosticsLog", request_id=11))
    assert got.status == "Accepted" and got.filename == f"{STATION}-DiagnosticsLog-11.log"
    await csms.wait_for(lambda: "Uploaded" in statuses(csms, "LogStatusNotification", 11))
    assert statuses(csms, "LogStatusNotification", 11) == ["Uploading", "Uploaded"]
    bad = {"remote_location": "not a url"}
    got = await csms.call(STATION, call.GetLog(log=bad, log_type="SecurityLog", request_id=12))
    assert got.status == "Accepted"
    await csms.wait_for(lambda: "UploadFailure" in statuses(csms, "LogStatusNotification", 12))
    assert statuses(csms, "LogStatusNotification", 12) == ["Uploading", "UploadFailure"]
    trigger = call.TriggerMessage(requested_message="LogStatusNotification")
    assert (await csms.call(STATION, trigger)).status == "Accepted"
    await csms.wait_for(lambda: statuses(csms, "LogStatusNotification", None) == ["Idle"])
    assert_clean_wire(csms.state)


async def test_update_firmware_reports_download_and_installation(
    csms: StrictCsms,
    running: StationRunner,
) -> None:
    retrieve = (running.station.clock.now() + timedelta(seconds=30)).isoformat()
    firmware = {
        "location": "https://firmware.example.com/sim-0.2.0.bin",
        "retrieve_date_time": retrieve,
        "signature": "c2lnbmF0dXJl",
    }
    got = await csms.call(STATION, call.UpdateFirmware(request_id=21, firmware=firmware))
    assert got.status == "Accepted"
    await csms.wait_for(
        lambda: "Installed" in statuses(csms, "FirmwareStatusNotification", 21), what="Installed"
    )
    assert statuses(csms, "FirmwareStatusNotification", 21) == [
        "DownloadScheduled",
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "Installed",
    ]
    nowhere = {"location": "file:///tmp/x.bin", "retrieve_date_time": retrieve[:19] + "Z"}
    got = await csms.call(STATION, call.UpdateFirmware(request_id=22, firmware=nowhere))
    assert got.status == "Accepted"
    await csms.wait_for(
        lambda: "DownloadFailed" in statuses(csms, "FirmwareStatusNotification", 22),
        what="DownloadFailed",
    )
    bad_cert = dict(firmware, signing_certificate="-----BEGIN CERTIFICATE-----\nxx")
    got = await csms.call(STATION, call.UpdateFirmware(request_id=23, firmware=bad_cert))
    assert got.status == "InvalidCertificate"
    await csms.wait_for(
        lambda: any(
            e["type"] == "InvalidFirmwareSigningCertificate"
            for e in csms.state.of("SecurityEventNotification")
        ),
        what="security event",
    )
    trigger = call.TriggerMessage(requested_message="FirmwareStatusNotification")
    assert (await csms.call(STATION, trigger)).status == "Accepted"
    await csms.wait_for(lambda: statuses(csms, "FirmwareStatusNotification", None) == ["Idle"])
    assert_clean_wire(csms.state)


def _certificate_for(csr_pem: str) -> str:
    """What a CA would return: a certificate over the CSR's key."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_name)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


async def test_certificate_triggers_send_a_csr_and_only_its_certificate_is_accepted(
    csms: StrictCsms,
    running: StationRunner,
) -> None:
    for trigger, kind in [
        ("SignChargingStationCertificate", "ChargingStationCertificate"),
        ("SignV2GCertificate", "V2GCertificate"),
        ("SignCombinedCertificate", None),
    ]:
        got = await csms.call(STATION, call.TriggerMessage(requested_message=trigger))
        assert got.status == "Accepted"
        count = len(csms.state.of("SignCertificate"))
        await csms.wait_for(lambda n=count: len(csms.state.of("SignCertificate")) == n + 1)
        request = csms.state.of("SignCertificate")[-1]
        assert request.get("certificateType") == kind
        csr = x509.load_pem_x509_csr(request["csr"].encode())
        assert csr.is_signature_valid
        assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == STATION
    v2g_csr = csms.state.of("SignCertificate")[1]["csr"]
    stranger = _certificate_for(csms.state.of("SignCertificate")[0]["csr"])
    got = await csms.call(
        STATION,
        call.CertificateSigned(
            certificate_chain=_certificate_for(v2g_csr), certificate_type="V2GCertificate"
        ),
    )
    assert got.status == "Accepted"
    assert "V2GCertificate" in running.station.certificates
    again = await csms.call(
        STATION,
        call.CertificateSigned(
            certificate_chain=_certificate_for(v2g_csr), certificate_type="V2GCertificate"
        ),
    )
    assert again.status == "Rejected"  # that key has its certificate already
    got = await csms.call(
        STATION,
        call.CertificateSigned(certificate_chain=stranger, certificate_type="V2GCertificate"),
    )
    assert got.status == "Rejected"  # the charging station key's, not the V2G one's
    assert_clean_wire(csms.state)


async def test_change_availability_reports_the_new_status(
    csms: StrictCsms,
    running: StationRunner,
) -> None:
    got = await csms.call(
        STATION, call.ChangeAvailability(operational_status="Inoperative", evse={"id": 1})
    )
    assert got.status == "Accepted"
    await csms.wait_for(
        lambda: csms.state.of("StatusNotification")[-1]["connectorStatus"] == "Unavailable"
    )
    assert_clean_wire(csms.state)
