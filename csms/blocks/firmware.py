"""Blocks L (Firmware management) and N (Diagnostics: GetLog) status reports (2.0.1 and 2.1).

After an operator's UpdateFirmware or GetLog the station reports its progress with
FirmwareStatusNotification (L01) and LogStatusNotification (N01). Each is stored with a
one-line summary (``csms.store.station_events``) and acknowledged; operators read them with
``GET /api/stations/{id}/events`` and ``v2g stations events``.
"""

from __future__ import annotations

from typing import Any

from csms.blocks.station_events import stored
from csms.context import StationContext
from csms.ocpp.rpc import Handler


def status_summary(payload: dict[str, Any]) -> str:
    """``Downloading (request 7)``: the status, and the request it answers when given."""
    request_id = payload.get("requestId")
    return payload["status"] + ("" if request_id is None else f" (request {request_id})")


HANDLERS: dict[str, Handler[StationContext]] = {
    "FirmwareStatusNotification": stored("FirmwareStatusNotification", status_summary, {}),
    "LogStatusNotification": stored("LogStatusNotification", status_summary, {}),
}
