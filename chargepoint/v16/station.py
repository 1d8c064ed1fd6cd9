"""The 1.6 station service: the shared ``Station`` whose events go out as 1.6 messages.

Events are still queued in order and replayed after an outage; at send time each one is
converted: Started -> StartTransaction, whose answer gives the CSMS's integer transactionId;
Updated -> MeterValues under that id; Ended -> StopTransaction with the Begin and End
readings as ``transactionData``. The station's own transaction ids stay the keys
everywhere else (remote stop, reset), mapped to the CSMS's integers here.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from ocpp.v16 import call

from chargepoint.errors import Rejected
from chargepoint.ev_needs import NEEDS_MESSAGE, NEEDS_VENDOR, ev_behind, needs_data_16
from chargepoint.station import Station
from chargepoint.transaction import EventType, Evse, IdToken, StoppedReason, TriggerReason, TxEvent
from chargepoint.v16.payloads import (
    Begun,
    connector_status,
    meter_values_call,
    start_transaction_call,
    status_notification_call,
    stop_transaction_call,
)

LOG = logging.getLogger(__name__)


class Station16(Station):
    """A ``Station`` speaking OCPP 1.6J to the CSMS."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.csms_ids: dict[str, int] = {}  # station transaction id -> CSMS transactionId
        self._begun: dict[str, Begun] = {}
        self.remote_start_ids = itertools.count(1)  # 1.6 has none: numbered here
        self.reset_reason = "HardReset"  # or SoftReset: how the last Reset ends transactions

    schedule_follows_needs = False  # 1.6 is only ever charged: no schedule to wait for

    def charging_needs_call(self, evse_id: int) -> Any | None:
        """1.6 has no message for an EV's charging needs: the 2.0.1 one travels as DataTransfer
        (vendor ``NEEDS_VENDOR``, ``csms.blocks16.ev_needs`` on the CSMS side); None without
        an EV model behind the meter."""
        ev = ev_behind(self.meters[evse_id])
        if ev is None:
            return None
        data = needs_data_16(evse_id, ev, self.clock.now())
        return call.DataTransfer(vendor_id=NEEDS_VENDOR, message_id=NEEDS_MESSAGE, data=data)

    def transaction_for(self, csms_id: int) -> str | None:
        """The station's transaction id for a CSMS transactionId, if it is running here."""
        running = set(self.running_transactions())
        return next((t for t, n in self.csms_ids.items() if n == csms_id and t in running), None)

    def csms_id_of(self, evse: Evse) -> int | None:
        """The CSMS transactionId of the running transaction once StartTransaction was answered."""
        tx = evse.transaction
        return None if tx is None else self.csms_ids.get(tx.transaction_id)

    async def _send_event(self, event: TxEvent) -> None:
        """Send one queued event as its 1.6 message (Start, MeterValues or Stop)."""
        if event.event_type is EventType.STARTED:
            result = await self.send(start_transaction_call(event))
            self.csms_ids[event.transaction_id] = int(result.transaction_id)
            begin = event.meter[-1] if event.meter else None
            token = event.id_token.id_token if event.id_token is not None else ""
            self._begun[event.transaction_id] = Begun(token, begin)
            status = result.id_tag_info.get("status")
            if status != "Accepted":  # StopTransactionOnInvalidId
                self.request_stop(
                    event.transaction_id, TriggerReason.DEAUTHORIZED, StoppedReason.DE_AUTHORIZED
                )
                self.report(Rejected("StartTransaction", str(status)))
            evse = self.evses[event.evse_id]
            if (
                evse.transaction is not None
                and evse.transaction.transaction_id == event.transaction_id
            ):
                await self.send_status(evse)  # Preparing -> Charging, as 1.6 stations report
            return
        csms_id = self.csms_ids.get(event.transaction_id)
        if csms_id is None:  # its StartTransaction was refused: nothing to attach it to
            LOG.warning(
                "%s: %s of an unstarted transaction dropped", self.station_id, event.event_type
            )
            return
        if event.event_type is EventType.UPDATED:
            if any(s.values for s in event.meter):
                await self.send(meter_values_call(event.evse_id, event.meter, csms_id))
            return
        begun = self._begun.get(event.transaction_id)
        await self.send(stop_transaction_call(event, csms_id, begun, reset=self.reset_reason))
        self._begun.pop(event.transaction_id, None)
        self.csms_ids.pop(event.transaction_id, None)

    def _event_answered(self, event: TxEvent, result: Any) -> None:
        """Nothing left to do: ``_send_event`` handled each 1.6 answer as it came."""

    def _status_payload(self, evse: Evse) -> Any:
        """1.6 StatusNotification: connector id = EVSE id, Charging while a transaction runs."""
        status = connector_status(evse.status, charging=evse.transaction is not None)
        return status_notification_call(
            now=self.clock.now(), connector_id=evse.evse_id, status=status
        )

    async def authorize(self, token: IdToken) -> None:
        """1.6 Authorize of an idTag; raises Rejected unless Accepted."""
        result = await self.send(call.Authorize(id_tag=token.id_token))
        status = result.id_tag_info.get("status")
        if status != "Accepted":
            raise Rejected(f"Authorize {token.id_token}", str(status))
