"""The 2.1 station service: the shared ``Station`` plus V2X charging needs and allowed transfers.

Once a transaction's Started event has gone out (at once, or replayed after boot or an
outage), the EV behind the EVSE (if the meter has one: an ISO 15118-20 EV) states its
charging needs. NotifyAllowedEnergyTransfer is remembered per transaction, and a
discharge it does not allow is refused.
"""

from __future__ import annotations

import logging
from typing import Any

from chargepoint.errors import CallErrorReceived, CallFailed, NotConnected
from chargepoint.ev import Ev
from chargepoint.station import Station
from chargepoint.transaction import EventType, TxEvent
from chargepoint.v21.needs import charging_needs_call

LOG = logging.getLogger(__name__)


def ev_behind(meter: object) -> Ev | None:
    """The EV model behind a meter, if the meter has one."""
    ev = getattr(meter, "ev", None)
    return ev if isinstance(ev, Ev) else None


class Station21(Station):
    """A ``Station`` speaking OCPP 2.1 to the CSMS."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allowed_transfer: dict[str, tuple[str, ...]] = {}  # transaction id -> modes
        self._needs_due: dict[str, int] = {}  # transaction id -> EVSE, needs not sent yet

    async def submit(self, event: TxEvent) -> None:
        """Queue and send ``event``; once a Started event is through, the EV's charging needs."""
        if event.event_type is EventType.STARTED:
            self._needs_due[event.transaction_id] = event.evse_id
        elif event.event_type is EventType.ENDED:
            self._needs_due.pop(event.transaction_id, None)
            self.allowed_transfer.pop(event.transaction_id, None)
        await super().submit(event)

    async def flush(self) -> None:
        """Send queued events, then the needs of transactions whose Started went through.

        A Started event may be queued (offline, or before the boot was accepted): the needs
        follow it whenever it is delivered, never before it.
        """
        await super().flush()
        if not self._needs_due or not self.online.is_set():
            return
        queued = {e.transaction_id for e in self.queue.pending()}
        for transaction_id, evse_id in list(self._needs_due.items()):
            if transaction_id in queued:
                continue
            del self._needs_due[transaction_id]
            tx = self.evses[evse_id].transaction
            if tx is not None and tx.transaction_id == transaction_id:
                await self.send_charging_needs(evse_id)

    async def send_charging_needs(self, evse_id: int) -> None:
        """NotifyEVChargingNeeds for the EV on ``evse_id``; best effort (none without an EV)."""
        ev = ev_behind(self.meters[evse_id])
        if ev is None:
            return
        try:
            await self.send(charging_needs_call(evse_id, ev, self.clock.now()))
        except CallErrorReceived as exc:
            self.report(exc)
        except (CallFailed, NotConnected) as exc:
            LOG.info("%s: charging needs of EVSE %s not sent: %s", self.station_id, evse_id, exc)

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
