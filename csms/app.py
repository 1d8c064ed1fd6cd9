"""The CSMS composition root: builds everything, owns start-up and shutdown.

``start_csms`` opens the data directory's database and starts the OCPP server. With a ledger
(``ledger="embedded"``: 4 in-process validators under ``DATA_DIR/ledger``, created on first
start; ``ledger="external"``: the validators of the ``genesis`` file's data directory) it also
settles ended sessions (signed with the CSMS key authorised in genesis), drains the settlement
outbox to the validators and runs the V2G dispatcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

from csms.cluster import Cluster, default_process_name
from csms.config import CsmsConfig
from csms.context import CsmsServices
from csms.credentials import load_credential_key
from csms.defaults import DEFAULT_TARIFF_YAML
from csms.dispatch import DispatchPolicy
from csms.dispatching import Dispatcher, DispatchSettings
from csms.errors import ConfigError
from csms.identity import PseudonymKey, create_key_file, load_key_file
from csms.ledger_link import ValidatorLedger
from csms.outbox import OutboxWorker
from csms.server import CsmsServer
from csms.service import StationService
from csms.settling import SettlementSetup, session_closer
from csms.store.sqlite import CsmsStore
from csms.tariffs import load_tariff
from csms.timeutil import Clock, utc_now
from csms.web.deps import ReviewDeps
from csms.web.server import WebServer, start_web
from ledger.consensus.runner import EmbeddedSet, Tuning, start_embedded, validator_urls
from ledger.genesis import Genesis, load_genesis
from ledger.home import init_data_dir
from ledger.keys import read_key_file

log = logging.getLogger(__name__)

LedgerMode = Literal["off", "embedded", "external"]
EMBEDDED_VALIDATORS = 4
EMBEDDED_BLOCK_INTERVAL_MS = 250


@dataclass(slots=True)
class CsmsApp:
    data_dir: Path
    store: CsmsStore
    server: CsmsServer
    stations: StationService
    setup: SettlementSetup | None = None
    genesis_path: Path | None = None
    outbox: OutboxWorker | None = None
    ledger: ValidatorLedger | None = None
    dispatcher: Dispatcher | None = None
    embedded: EmbeddedSet | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    web: WebServer | None = None  # the review dashboard, API and /metrics

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        if self.web is not None:
            await self.web.stop()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.server.stop()
        if self.ledger is not None:
            await self.ledger.close()
        if self.embedded is not None:
            await self.embedded.stop()
        await self.store.close()


def key_path(data_dir: Path, name: str) -> Path:
    return data_dir / "keys" / name


def read_or_create_key(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        create_key_file(path)
    return load_key_file(path)


def load_settlement_setup(
    data_dir: Path, config: CsmsConfig, genesis: Genesis, genesis_path: Path
) -> SettlementSetup:
    """The tariff, the CSMS signing key and the pseudonym key, creating defaults if missing."""
    tariff_path = Path(config.tariff_file) if config.tariff_file else data_dir / "tariff.yaml"
    if not config.tariff_file and not tariff_path.exists():
        tariff_path.write_text(DEFAULT_TARIFF_YAML, encoding="utf-8")
        log.info("wrote the default tariff to %s", tariff_path)
    signer_path = (
        Path(config.csms_key) if config.csms_key else genesis_path.parent / "keys" / "csms.key"
    )
    try:
        signer = read_key_file(signer_path)
    except Exception as exc:
        raise ConfigError(f"csms_key {signer_path}: {exc}") from None
    return SettlementSetup(
        operator=config.operator,
        chain_id=genesis.chain_id,
        signer=signer,
        tariff=load_tariff(tariff_path),
        pseudonym_key=PseudonymKey(1, read_or_create_key(key_path(data_dir, "pseudonym.key"))),
        slack=timedelta(seconds=config.evidence_slack_seconds),
        max_power_w=config.max_station_power_w,
    )


def settlement_setup_for(data_dir: Path, config: CsmsConfig) -> SettlementSetup:
    """The settlement setup of an existing data directory (its genesis: the configured one,
    else the embedded set's), for settling outside a running CSMS."""
    genesis_path = Path(config.genesis) if config.genesis else data_dir / "ledger" / "genesis.json"
    if not genesis_path.is_file():
        raise ConfigError(f"{genesis_path}: no genesis file: this data directory never settled")
    try:
        genesis = load_genesis(genesis_path)
    except Exception as exc:
        raise ConfigError(f"genesis {genesis_path}: {exc}") from None
    return load_settlement_setup(data_dir, config, genesis, genesis_path)


def ensure_embedded_ledger(data_dir: Path, clock: Clock) -> Path:
    """``DATA_DIR/ledger`` with a genesis of 4 validators, created on first use."""
    ledger_dir = data_dir / "ledger"
    genesis_path = ledger_dir / "genesis.json"
    if not genesis_path.exists():
        init_data_dir(
            ledger_dir,
            validators=EMBEDDED_VALIDATORS,
            chain_id=f"v2g-{data_dir.resolve().name}",
            genesis_time=int(clock().timestamp() * 1000),
        )
        log.info("created an embedded validator set in %s", ledger_dir)
    return genesis_path


async def start_csms(
    data_dir: Path | str,
    config: CsmsConfig,
    clock: Clock = utc_now,
    *,
    ledger: LedgerMode = "off",
    tuning: Tuning | None = None,
    serve_web: bool = False,
    compile_schemas: bool = False,
) -> CsmsApp:
    """Open the data directory, start the ledger link and the server; return the running app.

    ``serve_web`` also serves the review dashboard, API and /metrics on
    ``config.http_host:http_port``. ``compile_schemas`` compiles every OCPP schema the server
    uses (in a thread, beside the rest of the start-up) before it listens, so that no
    station's first message of a kind holds the event loop while stations are served.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = await CsmsStore.open_data_dir(data_dir, config.database or None)
    services = CsmsServices(store=store, config=config, clock=clock)
    server = CsmsServer(services, credential_key=load_credential_key(data_dir))
    if config.database:  # processes sharing the database: leases and calls between them
        server.cluster = Cluster(
            server,
            config.database,
            config.process_name or default_process_name(),
            lease_seconds=config.station_lease_seconds,
            max_remote_calls=config.max_remote_calls,
            call_timeout=config.call_timeout,
        )
    app = CsmsApp(data_dir, store, server, StationService(server))
    compiling = None
    if compile_schemas:
        compiling = threading.Thread(target=server.compile_schemas, name="schemas", daemon=True)
        compiling.start()
    try:
        if ledger != "off":
            await _start_settlement(app, services, ledger, tuning)
        if compiling is not None:
            await asyncio.to_thread(compiling.join)
        await server.start()
        if serve_web:
            app.web = await start_web(
                _review_deps(app, services),
                config.http_host,
                config.http_port,
                max_body_bytes=config.http_max_body_bytes,
            )
    except BaseException:
        await app.stop()
        raise
    return app


def _review_deps(app: CsmsApp, services: CsmsServices) -> ReviewDeps:
    return ReviewDeps(
        store=app.store,
        data_dir=app.data_dir,
        stations=app.stations,
        server=app.server,
        setup=app.setup,
        genesis_path=app.genesis_path,
        ledger_dir=None if app.genesis_path is None else app.genesis_path.parent,
        settlement_written=services.settlement_written,
        clock=services.clock,
        reserve_soc_pct=services.config.reserve_soc_pct if app.dispatcher is not None else None,
        ledger_links=lambda: app.ledger.links() if app.ledger is not None else {},
        validator_links=lambda: (
            [node.link_report() for node in app.embedded.nodes] if app.embedded else []
        ),
    )


def external_validator_urls(config: CsmsConfig, genesis: Genesis, genesis_path: Path) -> list[str]:
    """Where running validators listen: the config's ``validators``, else each validator's
    ``url`` in genesis, else the homes laid out beside the genesis file."""
    if config.validators:
        return list(config.validators)
    listed = [
        genesis.urls[v.address] for v in genesis.validators.validators if v.address in genesis.urls
    ]
    if listed:
        return listed
    try:
        return validator_urls(genesis_path.parent)
    except Exception as exc:
        raise ConfigError(
            f"genesis {genesis_path}: names no validator url, and no validator homes beside it"
            f" ({exc}); list them under 'validators:' in csms.yaml"
        ) from None


async def _start_settlement(
    app: CsmsApp, services: CsmsServices, mode: LedgerMode, tuning: Tuning | None
) -> None:
    config = services.config
    if mode == "embedded":
        genesis_path = ensure_embedded_ledger(app.data_dir, services.clock)
        # in-process validators share loopback: short blocks keep session-to-receipt short
        # (a receipt exists as soon as its block is decided); none while nothing happens
        embedded_tuning = tuning or Tuning(
            block_interval_ms=EMBEDDED_BLOCK_INTERVAL_MS,
            max_idle_interval_ms=round(config.ledger_max_idle_interval * 1000),
        )
        app.embedded = await start_embedded(genesis_path.parent, tuning=embedded_tuning)
        urls = app.embedded.urls
    else:
        if not config.genesis:
            raise ConfigError("ledger 'external' needs the genesis file (--genesis FILE)")
        genesis_path = Path(config.genesis)
    try:
        genesis = load_genesis(genesis_path)
    except Exception as exc:
        raise ConfigError(f"genesis {genesis_path}: {exc}") from None
    if mode != "embedded":
        urls = external_validator_urls(config, genesis, genesis_path)
    setup = load_settlement_setup(app.data_dir, config, genesis, genesis_path)
    app.setup, app.genesis_path = setup, genesis_path
    app.store.session_closer = session_closer(setup)
    app.store.clock_tolerance_s = float(config.clock_tolerance_seconds)
    services.tariff = setup.tariff
    app.ledger = ValidatorLedger(urls, genesis, key=setup.signer)
    app.outbox = OutboxWorker(
        app.store,
        app.ledger,
        services.clock,
        lease=config.outbox_lease_seconds,
        # the process's name in its claims, and a nonce: a restart under that name is another run
        claimer=f"{config.process_name}:{secrets.token_hex(4)}" if config.process_name else None,
    )
    services.settlement_written = app.outbox.wake
    app.store.handoff = app.outbox.handoff()  # a session's settlement submitted as written
    app.dispatcher = Dispatcher(
        app.server,
        setup.tariff,
        DispatchSettings(
            DispatchPolicy(config.export_threshold, config.charge_w, config.discharge_w),
            reserve_soc_pct=config.reserve_soc_pct,
            interval=config.dispatch_interval,
            concurrency=config.dispatch_concurrency,
            call_timeout=config.dispatch_call_timeout,
        ),
    )
    app.tasks.append(asyncio.create_task(app.outbox.run(), name="outbox"))
    services.plan_due = app.dispatcher.wake
    app.tasks.append(asyncio.create_task(app.dispatcher.run(), name="dispatcher"))
