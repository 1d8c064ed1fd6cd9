"""2.0.1 CSMS requests the simulated station answers without changing its charging:
DataTransfer (no vendor extensions), ClearCache, SendLocalList and GetLocalListVersion,
GetTransactionStatus and UnlockConnector. Each answer is the one the specification gives
for this station."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ocpp.v201 import call_result

from chargepoint.local_list import LocalListError, list_changes
from chargepoint.payloads import status_info
from chargepoint.station import FollowUp, Station

Answer = tuple[object, FollowUp | None]


def data_transfer(vendor_id: str) -> Answer:
    """No vendor-specific extension is implemented: every vendor is unknown (P01)."""
    return call_result.DataTransfer(status="UnknownVendorId"), None


def clear_cache() -> Answer:
    """The station keeps no authorization cache: there is nothing to clear (C11)."""
    return call_result.ClearCache(status="Accepted"), None


def send_local_list(
    station: Station,
    version: int,
    update_type: str,
    entries: Sequence[Mapping[str, Any]] | None,
) -> Answer:
    """D01: apply the update; Failed or VersionMismatch (with a reason) leaves the list."""
    try:
        station.local_list.apply(update_type, version, list_changes(entries or ()))
    except LocalListError as exc:
        info = status_info(exc.reason)
        return call_result.SendLocalList(status=exc.status, status_info=info), None
    station.device_model.write("LocalAuthListCtrlr", "Entries", str(len(station.local_list)))
    return call_result.SendLocalList(status="Accepted"), None


def local_list_version(station: Station) -> Answer:
    """D02: the version of the list held; 0 when no list was ever sent."""
    return call_result.GetLocalListVersion(version_number=station.local_list.version), None


def transaction_status(station: Station, transaction_id: str | None) -> Answer:
    """Whether transaction messages wait in the offline queue; ``ongoingIndicator`` for a
    named transaction (E14)."""
    queued = station.queue.pending()
    if transaction_id is None:
        return call_result.GetTransactionStatus(messages_in_queue=bool(queued)), None
    waiting = any(event.transaction_id == transaction_id for event in queued)
    ongoing = transaction_id in station.running_transactions()
    return (
        call_result.GetTransactionStatus(messages_in_queue=waiting, ongoing_indicator=ongoing),
        None,
    )


def unlock_connector(station: Station, evse_id: int, connector_id: int) -> Answer:
    """Refused while a transaction runs on it (F05); an unknown connector is UnknownConnector."""
    evse = station.evses.get(evse_id)
    if evse is None or connector_id != evse.connector_id:
        return call_result.UnlockConnector(status="UnknownConnector"), None
    if evse.transaction is not None:
        return call_result.UnlockConnector(status="OngoingAuthorizedTransaction"), None
    return call_result.UnlockConnector(status="Unlocked"), None
