"""CSMS-initiated Availability calls (OCPP 2.0.1 part G): ChangeAvailability (G03, G04)."""

from __future__ import annotations

from ocpp.v201 import call_result

from chargepoint.station import FollowUp, Station
from chargepoint.transaction import Evse


def change_availability(
    station: Station, operative: bool, evse_id: int | None, connector_id: int | None
) -> tuple[call_result.ChangeAvailability, FollowUp | None]:
    """Set one EVSE (or the whole station) (in)operative; Scheduled while a transaction runs.

    The new connector statuses go out as StatusNotifications after the answer.
    """
    if evse_id is None or evse_id == 0:
        targets = list(station.evses.values())
    else:
        evse = station.evses.get(evse_id)
        if evse is None or connector_id not in (None, evse.connector_id):
            info = {"reason_code": "UnknownEvse"}
            return call_result.ChangeAvailability(status="Rejected", status_info=info), None
        targets = [evse]
    before = {e.evse_id: e.status for e in targets}
    applied = [e.set_operative(operative) for e in targets]
    if evse_id in (None, 0):
        state = "Available" if operative else "Unavailable"
        station.device_model.write("ChargingStation", "AvailabilityState", state)
    status = "Accepted" if all(applied) else "Scheduled"
    changed = [e for e in targets if e.status != before[e.evse_id]]

    async def report(changed: list[Evse] = changed) -> None:
        for evse in changed:
            await station.send_status(evse)

    return call_result.ChangeAvailability(status=status), (report if changed else None)
