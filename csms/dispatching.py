"""The V2G dispatch task: follows the price signal for every running session.

A supervised background task (never a handler) looks at each active session of a connected
station, reads its latest state of charge and sample time, prices that moment with the tariff,
bounds the policy's decision by the EV's declared limits, the EVSE's reported rating and the
operator's caps (``csms.dispatch_limits``), and when that changes sends SetChargingProfile (a
negative limit discharges on a 2.0.1 station that may take one; ``operationMode`` on 2.1) and
CostUpdated with the running cost.

A pass handles its sessions concurrently, at most ``concurrency`` at a time, and gives each
call ``call_timeout`` seconds (waiting for the station's call slot included): a station that
never answers holds one slot for that long, not the decisions of every other station.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from csms.blocks16.remote import set_charging_profile_request_16
from csms.departure import keep_arrival_energy, keep_departure, state_between
from csms.dispatch import Decision, DispatchPolicy, decide, set_charging_profile_request
from csms.dispatch_limits import Limits, bound, limits_for
from csms.errors import CallTimeout, CsmsError
from csms.model import RegisterReading, SessionRecord
from csms.running import TransactionProgress
from csms.server import CsmsServer
from csms.settlement import total_cost
from csms.store.charging_needs import ChargingNeedsStore, EvChargingNeeds
from csms.store.evse_caps import EvseCapsStore
from csms.tariffs import Tariff, TariffError
from csms.timeutil import parse_timestamp

log = logging.getLogger(__name__)

_VERSION_SHAPE = {"ocpp1.6": "1.6", "ocpp2.0.1": "2.0.1", "ocpp2.1": "2.1"}


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    policy: DispatchPolicy
    reserve_soc_pct: int
    interval: float
    concurrency: int = 32  # sessions decided at once in a pass
    call_timeout: float = 10.0  # seconds one dispatch call may take, queueing included


def profile_request(
    shape: str,
    decision: Decision,
    *,
    evse_id: int,
    transaction_id: str,
    profile_id: int,
    start: datetime,
) -> dict[str, Any]:
    """The SetChargingProfile payload carrying ``decision`` for an OCPP ``shape``."""
    if shape == "1.6":
        return set_charging_profile_request_16(
            decision,
            connector_id=evse_id,
            transaction_id=transaction_id,
            profile_id=profile_id,
            start=start,
        )
    return set_charging_profile_request(
        decision,
        evse_id=evse_id,
        transaction_id=transaction_id,
        profile_id=profile_id,
        start=start,
        version="2.1" if shape == "2.1" else "2.0.1",
    )


class Dispatcher:
    """Owns the last decision per session so a profile is only sent when it changes."""

    def __init__(self, server: CsmsServer, tariff: Tariff, settings: DispatchSettings) -> None:
        self.server = server
        self.tariff = tariff
        self.settings = settings
        self.decisions: dict[tuple[str, str], Decision] = {}
        self.limits: dict[tuple[str, str], Limits] = {}
        self.costs: dict[tuple[str, str], float] = {}  # the running cost last sent
        # per session: the reading the last pass acted on, and the station time since the one
        # before (the dispatcher's cadence in station time)
        self.passed_at: dict[tuple[str, str], tuple[datetime, float]] = {}
        # the longest such cadence of the last pass: a session seen for the first time
        # (no cadence of its own yet) is judged with it
        self.fleet_cadence_s = 0.0
        # the register reading at each session's needs: read once per needs, not per pass
        self.baselines: dict[tuple[str, str], tuple[datetime, RegisterReading | None]] = {}
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

    async def _keep_departure(
        self,
        decision: Decision,
        limits: Limits,
        session: SessionRecord,
        needs: EvChargingNeeds | None,
        cadence_s: float,
        progress: TransactionProgress,
    ) -> Decision:
        """A discharge only while the EV still reaches its departure target, or, when it stated
        none, keeps the energy it arrived with (``csms.departure``).

        A discharge decided now on the latest reading stays in force until a decision on a
        later reading reaches the EV: up to the gap between readings plus twice ``cadence_s``,
        the station time between the readings this session's last two passes acted on (under
        an accelerated station clock a pass every few wall seconds is hours of station time).
        The step the check assumes is that sum.

        O(1) per pass: the first, latest and previous readings come from the session's stored
        ``progress``; the reading at its needs is looked up once per needs."""
        latest, first = progress.latest, progress.first
        if needs is None or needs.departure_time is None or needs.target_energy_wh is None:
            return keep_arrival_energy(
                decision, limits, first, latest, progress.previous_at, lag_s=2 * cadence_s
            )
        if latest is None or first is None:
            return Decision("charge", limits.max_charge_w)
        baseline = first
        if needs.timestamp:
            key = (session.station_id, session.transaction_id)
            needs_at = parse_timestamp(needs.timestamp)
            kept = self.baselines.get(key)
            if kept is None or kept[0] != needs_at:
                reading = await self.server.services.store.register_reading_at(*key, needs_at)
                kept = self.baselines[key] = (needs_at, reading)
            baseline = kept[1] or first
        state, step = state_between(
            baseline=baseline,
            latest=latest,
            previous_at=progress.previous_at,
            departure=parse_timestamp(needs.departure_time),
            target_energy_wh=needs.target_energy_wh,
            min_v2x_energy_wh=needs.min_v2x_energy_wh,
        )
        return keep_departure(decision, limits, state, step + 2 * cadence_s)

    async def _update_cost(
        self, connection: Any, key: tuple[str, str], progress: TransactionProgress
    ) -> None:
        """CostUpdated with the running cost when it changed since the last one sent.

        The running cost travels only here: a TransactionEvent Updated response carries no
        totalCost (2.0.1 and 2.1: totalCost is sent only when charging has ended). It is kept
        with each stored event (``csms.running``): the pass reads it with the session's row.
        """
        station_id, transaction_id = key
        cost = total_cost(progress.amount)
        if self.costs.get(key) == cost:
            return
        try:
            await self._call(
                connection, "CostUpdated", {"totalCost": cost, "transactionId": transaction_id}
            )
        except CsmsError as exc:
            log.info("%s: CostUpdated not delivered: %s", station_id, exc)
            return
        self.costs[key] = cost

    async def _call(self, connection: Any, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One dispatch call within ``call_timeout``, the wait for the station's slot included."""
        timeout = self.settings.call_timeout
        try:
            async with asyncio.timeout(timeout):
                result: dict[str, Any] = await connection.call(action, payload, timeout=timeout)
                return result
        except TimeoutError:
            raise CallTimeout(f"{connection.station_id}: {action} timed out") from None

    async def _pass_session(self, session: SessionRecord) -> tuple[bool, float]:
        """Decide one session and send what changed: (a profile was sent, its cadence)."""
        store = self.server.services.store
        key = (session.station_id, session.transaction_id)
        connection = self.server.connections.get(session.station_id)
        shape = _VERSION_SHAPE.get(connection.subprotocol) if connection else None
        if connection is None or shape is None or session.evse_id is None:
            return False, 0.0
        progress = await store.transaction_progress(*key, self.tariff)
        if progress.latest_at is None:
            return False, 0.0
        at, soc = progress.latest_at, progress.soc
        try:
            price = self.tariff.price_at(at)
        except TariffError:
            return False, 0.0
        needs = await ChargingNeedsStore(store).latest(session.station_id, session.evse_id)
        caps = await store.get_station_caps(session.station_id)
        evse = await EvseCapsStore(store).caps(session.station_id, session.evse_id)
        limits = limits_for(shape, needs, caps, self.settings.policy, evse)
        self.limits[key] = limits
        previous, cadence = self.passed_at.get(key, (None, 0.0))
        if previous is not None and at > previous:
            cadence = (at - previous).total_seconds()
        self.passed_at[key] = (at, cadence)
        own_cadence = cadence
        cadence = max(cadence, self.fleet_cadence_s)
        wanted = decide(
            self.settings.policy,
            export_price=price.export_price,
            soc_pct=soc if soc is not None else 0,
            reserve_soc_pct=self.settings.reserve_soc_pct,
        )
        decision = bound(wanted, limits)
        if decision.mode == "discharge" and previous is None and not self.fleet_cadence_s:
            # how long a decision stays in force is not known before a second look
            decision = Decision("charge", limits.max_charge_w)
        elif decision.mode == "discharge":
            decision = await self._keep_departure(
                decision, limits, session, needs, cadence, progress
            )
        if decision != wanted and limits.charge_only_reason and wanted.mode == "discharge":
            log.debug("%s: charge only: %s", session.station_id, limits.charge_only_reason)
        sent = False
        if self.decisions.get(key) != decision:
            payload = profile_request(
                shape,
                decision,
                evse_id=session.evse_id,
                transaction_id=session.transaction_id,
                profile_id=next(self._profile_ids),
                start=at,
            )
            try:
                result = await self._call(connection, "SetChargingProfile", payload)
            except CallTimeout as exc:
                log.warning("%s: dispatch to %s failed: %s", session.station_id, decision.mode, exc)
                return False, own_cadence  # not answering: no CostUpdated either this pass
            except CsmsError as exc:
                log.warning("%s: dispatch to %s failed: %s", session.station_id, decision.mode, exc)
            else:
                self.decisions[key] = decision
                sent = True
                log.info(
                    "%s %s: %s at %d W (%s)",
                    session.station_id,
                    session.transaction_id,
                    decision.mode,
                    decision.limit_w,
                    result.get("status"),
                )
        if shape != "1.6":  # 1.6 has no CostUpdated
            await self._update_cost(connection, key, progress)
        return sent, own_cadence

    async def run_once(self) -> int:
        """One pass over the active sessions; returns the number of profiles sent.

        Sessions are decided concurrently, ``concurrency`` at a time; a session whose
        decision fails is logged and skipped, the others carry on."""
        store = self.server.services.store
        sessions = await store.active_sessions()
        live = {(s.station_id, s.transaction_id) for s in sessions}
        queue = iter(sessions)
        outcomes: list[tuple[bool, float]] = []

        async def worker() -> None:
            for session in queue:  # shared: each session is taken by one worker
                try:
                    outcomes.append(await self._pass_session(session))
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("%s: dispatch of a session failed", session.station_id)

        workers = min(max(1, self.settings.concurrency), len(sessions))
        await asyncio.gather(*(worker() for _ in range(workers)))
        sent = sum(1 for was_sent, _ in outcomes if was_sent)
        pass_cadence = max((cadence for _, cadence in outcomes), default=0.0)
        for gone in set(self.decisions) - live:
            del self.decisions[gone]
        self.fleet_cadence_s = pass_cadence
        for gone in set(self.passed_at) - live:
            del self.passed_at[gone]
        for gone in set(self.limits) - live:
            del self.limits[gone]
        for gone in set(self.costs) - live:
            del self.costs[gone]
        for gone in set(self.baselines) - live:
            del self.baselines[gone]
        self.sent += sent
        return sent
