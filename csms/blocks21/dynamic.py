"""PullDynamicScheduleUpdate (2.1, K dynamic charging profiles): a station asks for the
current values of a dynamic profile this CSMS sent it.

The answer is the profile's latest values as this CSMS sent them on the current connection
(``csms.sent_profiles``: its first period, updated by each accepted UpdateDynamicSchedule),
bounded again as an UpdateDynamicSchedule is (``csms.power_bounds``) by the limits of the
moment: the EV's latest declared needs on the profile's EVSE, the EVSE's rating and the
operator's caps. What was lowered is logged. A profile this CSMS did not send on this
connection is answered ``Rejected`` (reason ``UnknownProfile``): the CSMS cannot know, or
bound, its values.
"""

from __future__ import annotations

import logging
from typing import Any

from csms.context import StationContext
from csms.ocpp.rpc import Handler
from csms.power_bounds import bound_dynamic_update, dynamic_update_limits, dynamic_update_reactive
from csms.store.charging_needs import ChargingNeedsStore
from csms.store.evse_caps import EvseCapsStore

log = logging.getLogger(__name__)


async def on_pull_dynamic_schedule_update(
    ctx: StationContext, payload: dict[str, Any]
) -> dict[str, Any]:
    profile_id = payload["chargingProfileId"]
    profile = ctx.sent_profiles.get(profile_id)
    if profile is None:
        return {
            "status": "Rejected",
            "statusInfo": {
                "reasonCode": "UnknownProfile",
                "additionalInfo": f"no dynamic profile {profile_id} sent on this connection",
            },
        }
    store = ctx.services.store
    caps = await store.get_station_caps(ctx.station_id)
    evse = await EvseCapsStore(store).caps(ctx.station_id, profile.evse_id or None)
    needs = None
    if profile.evse_id:
        needs = await ChargingNeedsStore(store).latest(ctx.station_id, profile.evse_id)
    limits = dynamic_update_limits(profile, needs, caps, evse)
    request = {"chargingProfileId": profile_id, "scheduleUpdate": dict(profile.values)}
    bounded, changes = bound_dynamic_update(
        request, profile, limits, dynamic_update_reactive(profile, needs, limits)
    )
    if changes:
        log.warning(
            "%s: PullDynamicScheduleUpdate %s bounded: %s",
            ctx.station_id,
            profile_id,
            "; ".join(changes),
        )
    return {"status": "Accepted", "scheduleUpdate": bounded["scheduleUpdate"]}


HANDLERS: dict[str, Handler[StationContext]] = {
    "PullDynamicScheduleUpdate": on_pull_dynamic_schedule_update,
}
