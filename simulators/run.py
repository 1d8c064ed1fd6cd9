"""Running a scenario end to end: CSMS (embedded or running elsewhere), fleet, settlement.

The composition root of ``v2g simulate`` and ``v2g demo``: it starts what is needed, registers
the fleet, funds the ledger accounts of EVs paying through the ledger (the aggregator's
top-up), runs the stations, waits until every session's settlement is final and reads the
outcome back from the CSMS database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from csms.app import CsmsApp, start_csms
from csms.config import CsmsConfig
from csms.identity import RegisteredToken, ev_pseudonym
from csms.store.sqlite import CsmsStore
from csms.timeutil import format_timestamp, parse_timestamp
from ledger.consensus.client import submit_tx
from ledger.keys import read_key_file
from ledger.tx import ev_account, operator_account, sign_tx, topup_body
from simulators.fleet import StationPlan, plan_fleet, register_fleet, run_fleet
from simulators.scenario import Scenario
from simulators.summary import SessionOutcome, Summary, summarise

log = logging.getLogger(__name__)

TOPUP_AMOUNT = 500_000_000  # 500 currency units per EV account paying through the ledger
FINAL = {"committed", "flagged", "rejected"}

Progress = Callable[[int, int, int], None]  # (ended sessions, final settlements, total)


@dataclass(slots=True)
class FleetRun:
    summary: Summary
    errors: list[str]


async def fund_ledger_accounts(app: CsmsApp, plans: list[StationPlan]) -> None:
    """The aggregator tops up the ledger account of every EV that pays through the ledger."""
    if app.setup is None or app.genesis_path is None:
        return
    aggregator_key = app.genesis_path.parent / "keys" / "aggregator.key"
    if not aggregator_key.exists():
        log.warning("no aggregator key at %s: ledger-paying EVs are not funded", aggregator_key)
        return
    urls = app.embedded.urls if app.embedded is not None else None
    if urls is None:
        from ledger.consensus.runner import validator_urls

        urls = validator_urls(app.genesis_path.parent)
    key = read_key_file(aggregator_key)
    # EVs that pay through the ledger, and the operator, who pays EVs that fed the grid
    accounts = [
        ev_account(
            ev_pseudonym(RegisteredToken(p.token, "ISO14443", "ledger"), app.setup.pseudonym_key)
        )
        for p in plans
        if p.payment == "ledger"
    ]
    if not accounts:
        return
    for account in [operator_account(app.setup.operator), *accounts]:
        body = topup_body(topup_id=f"topup-{account}-{time.time_ns()}", account=account,
                          amount=TOPUP_AMOUNT)  # fmt: skip
        try:
            await submit_tx(urls, sign_tx(body, key, app.setup.chain_id), key=key, timeout_s=30)
        except Exception as exc:  # a session paid by ledger then shows up as rejected
            log.warning("top-up of %s failed: %s", account, exc)


async def fleet_outcomes(
    store: CsmsStore, station_ids: set[str], earlier: frozenset[tuple[str, str]] = frozenset()
) -> list[SessionOutcome]:
    """The ended sessions of ``station_ids``, leaving out those of earlier runs."""
    outcomes = []
    for session in await store.list_sessions():
        if session.station_id not in station_ids or session.state != "ended":
            continue
        if (session.station_id, session.transaction_id) in earlier:
            continue
        settled = await store.settlement_for_session(session.station_id, session.transaction_id)
        latency = None
        if settled is not None and settled.committed_at is not None:
            latency = (
                parse_timestamp(settled.committed_at) - parse_timestamp(settled.created_at)
            ).total_seconds()
        outcomes.append(
            SessionOutcome(
                station_id=session.station_id,
                transaction_id=session.transaction_id,
                status=settled.status if settled is not None else "unsettled",
                import_wh=(settled.import_wh if settled and settled.import_wh is not None
                           else session.import_wh),
                export_wh=(settled.export_wh if settled and settled.export_wh is not None
                           else session.export_wh),
                amount=settled.amount if settled is not None else None,
                commit_latency_s=latency,
            )
        )  # fmt: skip
    return outcomes


async def _watch(
    store: CsmsStore,
    station_ids: set[str],
    earlier: frozenset[tuple[str, str]],
    total: int,
    progress: Progress | None,
) -> tuple[int, int]:
    outcomes = await fleet_outcomes(store, station_ids, earlier)
    final = sum(o.status in FINAL for o in outcomes)
    if progress is not None:
        progress(len(outcomes), final, total)
    return len(outcomes), final


async def run_scenario(
    scenario: Scenario,
    store: CsmsStore,
    csms_url: str,
    *,
    key_dir: Path,
    app: CsmsApp | None = None,
    progress: Progress | None = None,
    settle_timeout_s: float = 120.0,
) -> FleetRun:
    """Register and run the fleet against the CSMS whose database is ``store``.

    With ``app`` (an embedded CSMS) the EVs paying through the ledger are funded first;
    against a CSMS running elsewhere every EV pays by invoice.
    """
    started = time.monotonic()
    scenario = await clear_of_earlier_runs(scenario, store)
    plans = plan_fleet(scenario, key_dir, ledger_payments=app is not None)
    await register_fleet(store, plans)
    if app is not None:
        await fund_ledger_accounts(app, plans)
    station_ids = {p.station_id for p in plans}
    earlier = frozenset((s.station_id, s.transaction_id) for s in await store.list_sessions())
    total = scenario.total_sessions
    fleet = asyncio.create_task(run_fleet(scenario, plans, csms_url))
    while not fleet.done():
        await _watch(store, station_ids, earlier, total, progress)
        await asyncio.wait({fleet}, timeout=0.25)
    result = fleet.result()
    deadline = time.monotonic() + settle_timeout_s
    while time.monotonic() < deadline:
        ended, final = await _watch(store, station_ids, earlier, total, progress)
        if final >= ended:
            break
        if app is not None and app.outbox is not None:
            app.outbox.wake()
        await asyncio.sleep(0.25)
    outcomes = await fleet_outcomes(store, station_ids, earlier)
    errors = list(result.errors)
    missing = total - len(outcomes)
    if missing > 0 and not errors:
        errors.append(f"{missing} session(s) never ended")
    summary = summarise(
        outcomes,
        stations=len(plans),
        errors=len(errors),
        wall_seconds=time.monotonic() - started,
        speed=scenario.speed,
        achieved_speed=result.achieved_speed,
        departures=result.departures,
    )
    return FleetRun(summary, errors)


async def clear_of_earlier_runs(scenario: Scenario, store: CsmsStore) -> Scenario:
    """A default timeline (no ``start``) moved back a day at a time until it overlaps no
    session an earlier run left on the same stations, so one EVSE never runs two at once."""
    if scenario.start:
        return scenario
    ids = {p.station_id for p in plan_fleet(scenario, Path("."), ledger_payments=False)}
    times = [
        (parse_timestamp(s.started_at), parse_timestamp(s.ended_at or s.started_at))
        for s in await store.list_sessions()
        if s.station_id in ids and s.started_at
    ]
    start = scenario.start_time
    if times:
        first = min(t[0] for t in times)
        last = max(t[1] for t in times)
        for _ in range(366):
            if start + scenario.span <= first or start >= last:
                break
            start -= timedelta(days=1)
    return replace(scenario, start=format_timestamp(start))


def simulation_config(scenario: Scenario, base: CsmsConfig | None = None) -> CsmsConfig:
    """A CSMS config for an embedded run: free ports, the scenario's tariff, quick dispatch."""
    config = (base or CsmsConfig()).with_overrides(port=0, http_port=0)
    overrides: dict[str, object] = {
        "rate_limit_per_s": max(config.rate_limit_per_s, 200.0),
        "rate_limit_burst": max(config.rate_limit_burst, 1000),
        "dispatch_interval": min(config.dispatch_interval, 0.5),
        "max_connections": max(config.max_connections, scenario.stations + 10),
    }
    if scenario.tariff:
        overrides["tariff_file"] = str(Path(scenario.tariff).resolve())
    return config.with_overrides(**overrides)


@contextlib.asynccontextmanager
async def embedded_csms(
    data_dir: Path, config: CsmsConfig, *, serve_web: bool = False
) -> AsyncIterator[CsmsApp]:
    """The CSMS a simulation runs against, stopped however the run ends."""
    app = await start_csms(
        data_dir, config, ledger="external" if config.genesis else "embedded", serve_web=serve_web
    )
    try:
        yield app
    finally:
        await app.stop()
