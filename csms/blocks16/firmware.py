"""OCPP 1.6 Firmware Management and security extension notifications: stored and answered.

After an operator's UpdateFirmware, GetDiagnostics, SignedUpdateFirmware or GetLog the station
reports its progress; each report is stored with a one-line summary like 2.0.1's
(``csms.blocks.firmware``), visible with ``GET /api/stations/{id}/events`` and
``v2g stations events``. Security events are kept like 2.0.1's (block A).
"""

from __future__ import annotations

from csms.blocks.firmware import status_summary
from csms.blocks.security import on_security_event_notification
from csms.blocks.station_events import stored
from csms.context import StationContext
from csms.ocpp.rpc import Handler

HANDLERS: dict[str, Handler[StationContext]] = {
    action: stored(action, status_summary, {})
    for action in (
        "FirmwareStatusNotification",
        "DiagnosticsStatusNotification",
        "SignedFirmwareStatusNotification",
        "LogStatusNotification",
    )
} | {
    "SecurityEventNotification": on_security_event_notification,
}
