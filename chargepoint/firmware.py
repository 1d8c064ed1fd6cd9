"""Firmware Management (OCPP 2.0.1 part L): UpdateFirmware (L01) and its status reports.

The simulated station downloads nothing: it reports ``DownloadScheduled`` until
``retrieveDateTime``, ``Downloading`` and ``Downloaded`` (``DownloadFailed`` when the
location is not a transfer URL), ``SignatureVerified`` when the request was signed,
``InstallScheduled`` until ``installDateTime``, then waits for running transactions to end
(L01.FR.06) and reports ``Installing`` and ``Installed``; the new firmware needs no reboot.
A new request while one runs cancels it (``AcceptedCanceled``), except during installation.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from cryptography import x509
from ocpp.v201 import call, call_result

from chargepoint.diagnostics import location_usable
from chargepoint.payloads import security_event_call, status_info
from chargepoint.station import Activity, FollowUp, Station

DOWNLOAD_SECONDS = 10  # station seconds a download takes
INSTALL_SECONDS = 10  # station seconds an installation takes
IDLE_POLL_SECONDS = 5  # station seconds between looks for the last transaction's end

Answer = tuple[Any, FollowUp | None]


def update_firmware(
    station: Station,
    request_id: int,
    location: str,
    retrieve_at: datetime,
    *,
    install_at: datetime | None = None,
    signature: str | None = None,
    signing_certificate: str | None = None,
) -> Answer:
    """L01: accept and run the update in a follow-up; refuse a certificate that does not
    parse (InvalidCertificate, with a security event)."""
    previous = station.firmware_update
    if previous is not None and previous.running and previous.status == "Installing":
        info = status_info("InstallationInProgress")
        return call_result.UpdateFirmware(status="Rejected", status_info=info), None
    if signing_certificate is not None and not _certificate_parses(signing_certificate):
        event = security_event_call(
            now=station.clock.now(), kind="InvalidFirmwareSigningCertificate"
        )
        return call_result.UpdateFirmware(status="InvalidCertificate"), _notifier(station, event)
    canceled = previous if previous is not None and previous.running else None
    activity = Activity(request_id, "Idle")
    station.firmware_update = activity

    async def update() -> None:
        activity.task = asyncio.current_task()
        if canceled is not None and canceled.task is not None:
            canceled.task.cancel()
        clock = station.clock
        if retrieve_at > clock.now():
            await _report(station, activity, "DownloadScheduled")
            await clock.sleep((retrieve_at - clock.now()).total_seconds())
        await _report(station, activity, "Downloading")
        await clock.sleep(DOWNLOAD_SECONDS)
        if not location_usable(location):
            await _report(station, activity, "DownloadFailed")
            return
        await _report(station, activity, "Downloaded")
        if signature is not None:
            await _report(station, activity, "SignatureVerified")
        if install_at is not None and install_at > clock.now():
            await _report(station, activity, "InstallScheduled")
            await clock.sleep((install_at - clock.now()).total_seconds())
        while station.running_transactions():
            await clock.sleep(IDLE_POLL_SECONDS)
        await _report(station, activity, "Installing")
        await clock.sleep(INSTALL_SECONDS)
        await _report(station, activity, "Installed")

    status = "Accepted" if canceled is None else "AcceptedCanceled"
    return call_result.UpdateFirmware(status=status), update


def _certificate_parses(pem: str) -> bool:
    try:
        x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return False
    return True


def _notifier(station: Station, payload: Any) -> FollowUp:
    async def send() -> None:
        await station.notify(payload)

    return send


FINAL = ("DownloadFailed", "Installed")


async def _report(station: Station, activity: Activity, status: str) -> None:
    activity.status = status
    activity.finished = status in FINAL
    payload = call.FirmwareStatusNotification(status=status, request_id=activity.request_id)
    await station.notify(payload)


async def send_firmware_status(station: Station) -> None:
    """F06 FirmwareStatusNotification: the running update's status, else ``Idle``."""
    update = station.firmware_update
    if update is not None and update.running and update.status != "Idle":
        payload = call.FirmwareStatusNotification(
            status=update.status, request_id=update.request_id
        )
    else:
        payload = call.FirmwareStatusNotification(status="Idle")
    await station.notify(payload)
