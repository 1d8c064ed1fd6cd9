"""The V2G dispatch task: follows the price signal for every running session.

A supervised background task (never a handler) looks at each active session of a connected
station, reads its latest state of charge and sample time, prices that moment with the tariff,
and when the policy's decision changes sends SetChargingProfile (negative limit = discharge on
2.0.1; ``operationMode`` on 2.1) and CostUpdated with the running cost.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass

from csms.dispatch import Decision, DispatchPolicy, decide, set_charging_profile_request
from csms.errors import CsmsError
from csms.server import CsmsServer
from csms.settlement import running_cost, total_cost
from csms.tariffs import Tariff, TariffError

log = logging.getLogger(__name__)

_VERSION_SHAPE = {"ocpp2.0.1": "2.0.1", "ocpp2.1": "2.1"}


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    policy: DispatchPolicy
    reserve_soc_pct: int
    interval: float


class Dispatcher:
    """Owns the last decision per session so a profile is only sent when it changes."""

    def __init__(self, server: CsmsServer, tariff: Tariff, settings: DispatchSettings) -> None:
        self.server = server
        self.tariff = tariff
        self.settings = settings
        self.decisions: dict[tuple[str, str], Decision] = {}
        self.sent = 0
        self._profile_ids = itertools.count(1)

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatch pass failed; continuing")
            await asyncio.sleep(self.settings.interval)

    async def run_once(self) -> int:
        """One pass over the active sessions; returns the number of profiles sent."""
        store = self.server.services.store
        sent = 0
        live = set()
        for session in await store.active_sessions():
            key = (session.station_id, session.transaction_id)
            live.add(key)
            connection = self.server.connections.get(session.station_id)
            shape = _VERSION_SHAPE.get(connection.subprotocol) if connection else None
            if connection is None or shape is None or session.evse_id is None:
                continue
            state = await store.latest_state(session.station_id, session.transaction_id)
            if state is None:
                continue
            at, soc = state
            try:
                price = self.tariff.price_at(at)
            except TariffError:
                continue
            decision = decide(
                self.settings.policy,
                export_price=price.export_price,
                soc_pct=soc if soc is not None else 0,
                reserve_soc_pct=self.settings.reserve_soc_pct,
            )
            if self.decisions.get(key) == decision:
                continue
            payload = set_charging_profile_request(
                decision,
                evse_id=session.evse_id,
                transaction_id=session.transaction_id,
                profile_id=next(self._profile_ids),
                start=at,
                version=shape,  # type: ignore[arg-type]
            )
            try:
                result = await connection.call("SetChargingProfile", payload)
            except CsmsError as exc:
                log.warning("%s: dispatch to %s failed: %s", session.station_id, decision.mode, exc)
                continue
            self.decisions[key] = decision
            sent += 1
            try:
                samples = await store.register_samples(session.station_id, session.transaction_id)
                await connection.call(
                    "CostUpdated",
                    {
                        "totalCost": total_cost(running_cost(samples, self.tariff)),
                        "transactionId": session.transaction_id,
                    },
                )
            except CsmsError as exc:
                log.info("%s: CostUpdated not delivered: %s", session.station_id, exc)
            log.info(
                "%s %s: %s at %d W (%s)",
                session.station_id,
                session.transaction_id,
                decision.mode,
                decision.limit_w,
                result.get("status"),
            )
        for gone in set(self.decisions) - live:
            del self.decisions[gone]
        self.sent += sent
        return sent
