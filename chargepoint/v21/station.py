"""The 2.1 station service: the shared ``Station`` plus V2X charging needs and allowed transfers.

Once a transaction's Started event has gone out (at once, or replayed after boot or an
outage), the EV behind the EVSE (if the meter has one: an ISO 15118-20 EV) states its
charging needs with V2X parameters (the shared ``Station`` sends them; 2.1 only shapes them).
NotifyAllowedEnergyTransfer is remembered per transaction, and a discharge it does not allow
is refused.
"""

from __future__ import annotations

import logging
from typing import Any

from chargepoint.ev_needs import ev_behind
from chargepoint.station import Station
from chargepoint.transaction import EventType, TxEvent
from chargepoint.v21.needs import charging_needs_call

LOG = logging.getLogger(__name__)


class Station21(Station):
    """A ``Station`` speaking OCPP 2.1 to the CSMS."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowed_transfer: dict[str, tuple[str, ...]] = {}  # transaction id -> modes

    async def submit(self, event: TxEvent) -> None:
        """Queue and send ``event``; an ended transaction's allowed transfers are forgotten."""
        if event.event_type is EventType.ENDED:
            self.allowed_transfer.pop(event.transaction_id, None)
        await super().submit(event)

    def charging_needs_call(self, evse_id: int) -> Any | None:
        """2.1's NotifyEVChargingNeeds, with V2X parameters (an ISO 15118-20 EV)."""
        ev = ev_behind(self.meters[evse_id])
        return None if ev is None else charging_needs_call(evse_id, ev, self.clock.now())

    def allow_transfer(self, transaction_id: str, modes: tuple[str, ...]) -> bool:
        """Record the transfer modes the CSMS allows; False if no such transaction runs here."""
        if transaction_id not in self.running_transactions():
            return False
        self.allowed_transfer[transaction_id] = modes
        return True

    def discharge_allowed(self, evse_id: int) -> bool:
        """False once the CSMS allowed the EVSE's transaction no bidirectional transfer mode."""
        evse = self.evses.get(evse_id)
        tx = None if evse is None else evse.transaction
        allowed = None if tx is None else self.allowed_transfer.get(tx.transaction_id)
        return allowed is None or any("BPT" in mode for mode in allowed)
