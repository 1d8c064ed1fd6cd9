"""Diagnostics (OCPP 2.0.1 part N): GetLog (N01) and its LogStatusNotifications.

The simulated station has no log files to ship: an accepted GetLog reports ``Uploading``,
spends ``UPLOAD_SECONDS`` station seconds, then reports ``Uploaded``, or ``UploadFailure``
when ``remoteLocation`` is not an ftp(s)/http(s)/sftp URL with a host. A new GetLog while an
upload runs cancels it (``AcceptedCanceled``, N01.FR.12).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

from ocpp.v201 import call, call_result

from chargepoint.station import Activity, FollowUp, Station

LOG = logging.getLogger(__name__)

UPLOAD_SECONDS = 5  # station seconds an upload takes
TRANSFER_SCHEMES = ("ftp", "ftps", "http", "https", "sftp")

Answer = tuple[Any, FollowUp | None]


def location_usable(url: str) -> bool:
    """Whether ``url`` names somewhere a file could be transferred to or from."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in TRANSFER_SCHEMES and bool(parts.hostname)


def get_log(station: Station, request_id: int, log_type: str, remote_location: str) -> Answer:
    """N01: accept, then upload in a follow-up; a running upload is canceled first."""
    previous = station.log_upload
    canceled = previous if previous is not None and previous.running else None
    activity = Activity(request_id, "Idle")
    station.log_upload = activity
    filename = f"{station.station_id}-{log_type}-{request_id}.log"[:255]

    async def upload() -> None:
        activity.task = asyncio.current_task()
        if canceled is not None and canceled.task is not None:
            canceled.task.cancel()
            await _report(station, canceled, "AcceptedCanceled")
        await _report(station, activity, "Uploading")
        await station.clock.sleep(UPLOAD_SECONDS)
        if location_usable(remote_location):
            await _report(station, activity, "Uploaded")
        else:
            LOG.info("%s: cannot upload %s to %r", station.station_id, filename, remote_location)
            await _report(station, activity, "UploadFailure")

    status = "Accepted" if canceled is None else "AcceptedCanceled"
    return call_result.GetLog(status=status, filename=filename), upload


FINAL = ("Uploaded", "UploadFailure", "AcceptedCanceled")


async def _report(station: Station, activity: Activity, status: str) -> None:
    activity.status = status
    activity.finished = status in FINAL
    await station.notify(call.LogStatusNotification(status=status, request_id=activity.request_id))


async def send_log_status(station: Station) -> None:
    """F06 LogStatusNotification: ``Uploading`` with its requestId during an upload, else
    ``Idle``."""
    upload = station.log_upload
    if upload is not None and upload.running and upload.status == "Uploading":
        payload = call.LogStatusNotification(status="Uploading", request_id=upload.request_id)
    else:
        payload = call.LogStatusNotification(status="Idle")
    await station.notify(payload)
