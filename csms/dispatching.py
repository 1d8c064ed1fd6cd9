"""The V2G dispatch task: follows the price signal for every running session.

A supervised background task (never a handler) looks at each active session of a connected
station, within the EV's declared limits, the EVSE's reported rating and the operator's caps
(``csms.dispatch_limits``), and sends SetChargingProfile when what it asks changes (a negative
limit discharges on a 2.0.1 station that may take one; ``operationMode`` on 2.1) and
CostUpdated with the running cost.

An EV that stated its departure and target energy gets its whole session planned
(``csms.dispatch_plan``) and sent as one schedule in station time, again only when the plan
changes; a pass runs at once when an EV states its needs (``wake``), so the schedule reaches
the station before the EV does anything it would change. An EV without a
departure target is decided on each pass: the policy's decision for the price at its latest
reading, kept to the energy it arrived with (``csms.departure``).

A pass handles its sessions concurrently, at most ``concurrency`` at a time, and gives each
call ``call_timeout`` seconds (waiting for the station's call slot included): a station that
never answers holds one slot for that long, not the decisions of every other station.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from csms.blocks16.remote import set_charging_profile_request_16
from csms.departure import keep_arrival_energy, keep_departure, state_between
from csms.dispatch import (
    Decision,
    DispatchPolicy,
    decide,
    schedule_request,
    set_charging_profile_request,
)
from csms.dispatch_limits import Limits, bound, limits_for
from csms.dispatch_plan import Goal, PlannedPeriod, on_course, plan_session, planned_at
from csms.errors import CallTimeout, CsmsError
from csms.model import RegisterReading, SessionRecord
from csms.running import TransactionProgress
from csms.server import CsmsServer
from csms.settlement import total_cost
from csms.store.charging_needs import ChargingNeedsStore, EvChargingNeeds
from csms.store.evse_caps import EvseCapsStore
from csms.tariffs import Tariff, TariffError
from csms.timeutil import format_timestamp, parse_timestamp

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


@dataclass(frozen=True, slots=True)
class _Kept:
    """A session's plan, what it was planned on, and the net energy (import - export, Wh) of
    the register reading it was planned from."""

    basis: tuple[Any, ...]
    goal: Goal
    start_net: int
    plan: tuple[PlannedPeriod, ...]


def _net(reading: RegisterReading) -> int:
    return reading.import_wh - reading.export_wh


def _before_session(needs: EvChargingNeeds, first: RegisterReading | None) -> bool:
    """Whether ``needs`` were stated before the session's first reading (another EV's)."""
    if not needs.timestamp or first is None:
        return False
    return parse_timestamp(needs.timestamp) < first.at


def _has_target(needs: EvChargingNeeds | None) -> bool:
    """Whether the EV said when it leaves and how much energy it wants by then."""
    return (
        needs is not None
        and needs.departure_time is not None
        and needs.target_energy_wh is not None
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
        # per session with a departure target: its plan and what it was planned on, and the
        # schedule the station last accepted
        self.plans: dict[tuple[str, str], _Kept] = {}
        self.schedules: dict[tuple[str, str], tuple[PlannedPeriod, ...]] = {}
        self._wake = asyncio.Event()
        self.sent = 0
        self._profile_ids = itertools.count(1)

    def wake(self) -> None:
        """Run a pass now (an EV stated its needs): its schedule should reach the station
        before the EV does anything the schedule would change."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatch pass failed; continuing")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.interval)

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
        baseline = await self._baseline((session.station_id, session.transaction_id), needs, first)
        state, step = state_between(
            baseline=baseline,
            latest=latest,
            previous_at=progress.previous_at,
            departure=parse_timestamp(needs.departure_time),
            target_energy_wh=needs.target_energy_wh,
            min_v2x_energy_wh=needs.min_v2x_energy_wh,
        )
        return keep_departure(decision, limits, state, step + 2 * cadence_s)

    async def _baseline(
        self, key: tuple[str, str], needs: EvChargingNeeds, first: RegisterReading
    ) -> RegisterReading:
        """The EV's reading at its needs (the last at or before them), else the session's
        first; looked up once per needs."""
        if not needs.timestamp:
            return first
        needs_at = parse_timestamp(needs.timestamp)
        kept = self.baselines.get(key)
        if kept is None or kept[0] != needs_at:
            reading = await self.server.services.store.register_reading_at(*key, needs_at)
            kept = self.baselines[key] = (needs_at, reading)
        return kept[1] or first

    async def _plan(
        self,
        key: tuple[str, str],
        needs: EvChargingNeeds,
        limits: Limits,
        progress: TransactionProgress,
    ) -> tuple[PlannedPeriod, ...] | None:
        """The session's schedule to its departure (``csms.dispatch_plan``): planned from its
        reading at its needs, kept while the EV keeps to it and nothing it was planned on
        changed, planned again from the latest reading otherwise. None before any reading.

        Everything the first plan depends on is station data (the reading at the needs, the
        needs, the limits, the tariff), never when the pass ran, so the EV does the same at
        any speed of the station's clock and any lag of the link."""
        latest, first = progress.latest, progress.first
        if latest is None or first is None or needs.departure_time is None:
            return None
        target = needs.target_energy_wh or 0
        floor = needs.min_v2x_energy_wh if needs.min_v2x_energy_wh is not None else 0
        soc = progress.soc
        may = soc is not None and soc > self.settings.reserve_soc_pct
        basis = (needs.departure_time, target, floor, needs.timestamp, limits)
        kept = self.plans.get(key)
        if kept is not None and kept.basis == basis:
            delivered = _net(latest) - kept.start_net
            if kept.goal.may_discharge == may and on_course(
                kept.plan, kept.goal, at=latest.at, delivered_wh=delivered
            ):
                return kept.plan
            goal = Goal(
                start=latest.at,
                departure=parse_timestamp(needs.departure_time),
                needed_wh=kept.goal.needed_wh - delivered,
                floor_wh=kept.goal.floor_wh - delivered,
                may_discharge=may,
            )
            start_net = _net(latest)
        else:
            baseline = await self._baseline(key, needs, first)
            goal = Goal(
                start=baseline.at,
                departure=parse_timestamp(needs.departure_time),
                needed_wh=target,
                floor_wh=floor,
                may_discharge=may,
            )
            start_net = _net(baseline)
        plan = plan_session(goal, limits, self.settings.policy, self.tariff)
        self.plans[key] = _Kept(basis, goal, start_net, plan)
        return plan

    async def _send_plan(
        self,
        connection: Any,
        shape: str,
        session: SessionRecord,
        planned: tuple[PlannedPeriod, ...],
        at: datetime,
    ) -> bool | None:
        """Send ``planned`` unless the station has it: True sent, False not needed or
        refused, None when the station did not answer."""
        key = (session.station_id, session.transaction_id)
        if self.schedules.get(key) == planned:
            return False
        assert session.evse_id is not None
        payload = schedule_request(
            [(p.start, p.decision) for p in planned],
            evse_id=session.evse_id,
            transaction_id=session.transaction_id,
            profile_id=next(self._profile_ids),
            version="2.1" if shape == "2.1" else "2.0.1",
        )
        try:
            result = await self._call(connection, "SetChargingProfile", payload)
        except CallTimeout as exc:
            log.warning("%s: schedule not delivered: %s", session.station_id, exc)
            return None
        except CsmsError as exc:
            log.warning("%s: schedule not delivered: %s", session.station_id, exc)
            return False
        self.schedules[key] = planned
        self.decisions[key] = planned_at(planned, at)
        log.info(
            "%s %s: schedule of %d period(s), %s (%s)",
            session.station_id,
            session.transaction_id,
            len(planned),
            ", ".join(
                f"{format_timestamp(p.start)} {p.decision.mode} {p.decision.limit_w} W"
                for p in planned
            ),
            result.get("status"),
        )
        return True

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
        if needs is not None and _before_session(needs, progress.first):
            needs = None  # the EV before this one stated them
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
        if shape != "1.6" and _has_target(needs):
            assert needs is not None
            planned = await self._plan(key, needs, limits, progress)
            if planned is not None:
                sent = await self._send_plan(connection, shape, session, planned, at)
                if sent is None:
                    return False, own_cadence  # not answering: no CostUpdated either
                await self._update_cost(connection, key, progress)
                return sent, own_cadence
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
        for gone in set(self.plans) - live:
            del self.plans[gone]
        for gone in set(self.schedules) - live:
            del self.schedules[gone]
        self.sent += sent
        return sent
