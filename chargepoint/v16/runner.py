"""The composition root's OCPP 1.6J variant: the same connection loop, 1.6's boot.

The station, client and boot message are 1.6's; heartbeats, reconnects, sessions and
resets are the shared runner's. 1.6 has no SecurityEventNotification in its core profile,
so none is sent after a power-up or a reset.
"""

from __future__ import annotations

import logging
from typing import Any

from chargepoint.runner import StationRunner
from chargepoint.v16.client import StationClient16
from chargepoint.v16.payloads import boot_notification_call
from chargepoint.v16.station import Station16

LOG = logging.getLogger(__name__)


class StationRunner16(StationRunner):
    """Runs one 1.6J station (``v2g chargepoint --ocpp 1.6``)."""

    station_class = Station16
    client_class = StationClient16

    def _boot_payload(self, reason: str) -> Any:
        """1.6's BootNotification (it carries no boot reason)."""
        return boot_notification_call(
            vendor=self.config.vendor, model=self.config.model, serial=self.config.station_id
        )

    async def _security_event(self, kind: str) -> None:
        """Nothing to send: security events are not part of 1.6's core profile."""
