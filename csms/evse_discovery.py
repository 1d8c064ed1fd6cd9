"""After a station boots, the CSMS asks what its EVSEs can do (a supervised follow-up).

Once BootNotification has been answered (never inside the handler: ``csms.connection`` runs
follow-ups as their own tasks), the CSMS asks:

- on 2.0.1 and 2.1: GetBaseReport ``FullInventory`` (B07, which every 2.x station serves).
  The NotifyReport parts that follow are stored and read by ``csms.blocks.provisioning``
  (at most ``max_report_parts`` per report): an ``EVSE`` or ``ChargingStation`` ``Power``
  ``maxLimit`` becomes the EVSE's (or station's) rating, ``V2XChargingCtrlr`` its discharge
  capability (``csms.evse_limits``);
- on 1.6: GetConfiguration for the key the operator named as the station's power rating
  (``v2g stations set ID --power-key KEY``); nothing is asked of a station without one.

The dispatcher and an operator's profiles are then bounded by what was learned
(``csms.dispatch_limits``, ``csms.profile_bounds``). A station that refuses, answers a
CALLERROR or does not answer in ``call_timeout`` keeps the limits it had; nothing of its
setup waits on this. Each outcome is counted (``v2g_evse_discovery_total``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from csms.errors import CsmsError
from csms.evse_limits import facts_from_configuration, parse_power_key
from csms.store.evse_caps import EvseCapsStore

if TYPE_CHECKING:
    from csms.connection import StationConnection

log = logging.getLogger(__name__)

REPORT_BASE = "FullInventory"

FollowUp = Callable[["StationConnection"], Awaitable[None]]


async def discover_evse_limits(connection: StationConnection) -> None:
    """Ask ``connection``'s station for its EVSE limits (see the module docstring)."""
    services = connection.context.services
    if not services.config.evse_discovery:
        return
    counts = services.discovery
    station_id = connection.station_id
    try:
        if connection.subprotocol == "ocpp1.6":
            power_key = (await services.store.get_station_caps(station_id)).power_key
            if power_key is None:
                counts["not_asked"] += 1
                return
            key, _ = parse_power_key(power_key)
            counts["asked"] += 1
            response = await connection.call("GetConfiguration", {"key": [key]})
            facts = facts_from_configuration(response.get("configurationKey") or (), power_key)
            kept = await EvseCapsStore(services.store).record(
                station_id, facts, services.now_text()
            )
            counts["facts_learned"] += kept
            counts["answered"] += 1
            return
        counts["asked"] += 1
        request = {"requestId": secrets.randbelow(2**31 - 1) + 1, "reportBase": REPORT_BASE}
        response = await connection.call("GetBaseReport", request)
        status = response.get("status")
        counts["answered" if status == "Accepted" else "refused"] += 1
        if status != "Accepted":
            log.info("%s: GetBaseReport %s answered %s", station_id, REPORT_BASE, status)
    except CsmsError as exc:
        counts["failed"] += 1
        log.info("%s: EVSE limits not learned after boot: %s", station_id, exc)


FOLLOW_UPS: dict[str, FollowUp] = {"BootNotification": discover_evse_limits}
