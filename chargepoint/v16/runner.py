"""The composition root's OCPP 1.6J variant: the same connection loop, 1.6's boot.

The station, client and boot message are 1.6's; heartbeats, reconnects, sessions and
resets are the shared runner's. 1.6 has no SecurityEventNotification in its core profile,
so none is sent after a power-up or a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from chargepoint.client import StationClient
from chargepoint.errors import CallFailed, CallTimeout, NotConnected, Rejected
from chargepoint.runner import StationRunner
from chargepoint.v16.client import StationClient16
from chargepoint.v16.payloads import boot_notification_call
from chargepoint.v16.station import Station16

LOG = logging.getLogger(__name__)


class StationRunner16(StationRunner):
    """Runs one 1.6J station (``v2g chargepoint --ocpp 1.6``)."""

    station_class = Station16
    client_class = StationClient16

    async def _boot(self, client: StationClient, reason: str) -> bool:
        """1.6 BootNotification until Accepted; False if the link failed meanwhile."""
        payload = boot_notification_call(
            vendor=self.config.vendor, model=self.config.model, serial=self.config.station_id
        )
        while True:
            self.station.boot_requested.clear()
            try:
                result = await client.send(payload)
            except (CallTimeout, NotConnected):
                return False
            except CallFailed as exc:
                self.station.report(exc)
                return False
            interval = max(1, int(result.interval)) if result.interval else 60
            if result.status == "Accepted":
                self.station.device_model.write("OCPPCommCtrlr", "HeartbeatInterval", str(interval))
                return True
            if result.status == "Rejected":
                self.station.report(Rejected("BootNotification", "Rejected"))
            LOG.info(
                "%s: boot %s (%s), retrying in %s s", client.id, result.status, reason, interval
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.station.boot_requested.wait(), timeout=interval)

    async def _security_event(self, kind: str) -> None:
        """Nothing to send: security events are not part of 1.6's core profile."""
