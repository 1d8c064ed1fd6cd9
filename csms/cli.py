"""``v2g csms``, ``v2g stations`` and ``v2g tokens``: the CSMS and its registries."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from csms import event_loop, gc_pacing
from csms.config import check_security, load_config, process_name_problem
from csms.credentials import is_pending, load_credential_key, password_mac
from csms.errors import ConfigError, CsmsError
from csms.evse_limits import parse_power_key
from csms.model import DISCHARGE_MODES, NEGATIVE_LIMIT_201, StationRecord, TokenRecord
from csms.passwords import hash_password
from csms.store.engine import is_postgresql_url
from csms.store.sqlite import KEEP, CsmsStore, Keep
from csms.timeutil import format_timestamp, utc_now
from ledger.tables import render_table, utc_text

T = TypeVar("T")

_DATABASE_KEY = "v2g.database"


def _remember_database(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None and not is_postgresql_url(value):
        raise click.BadParameter(
            f"expected a postgresql://USER@HOST/DATABASE URL, got {value!r}", ctx, param
        )
    ctx.meta[_DATABASE_KEY] = value


# On every command that opens the store (and so has --data-dir).
DATABASE = click.option(
    "--database",
    metavar="URL",
    default=None,
    expose_value=False,
    callback=_remember_database,
    help="PostgreSQL database (postgresql://USER@HOST/DATABASE) instead of"
    " DATA_DIR/csms.sqlite (default: 'database:' in DATA_DIR/csms.yaml).",
)
_DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory holding the CSMS database and keys.",
)


def DATA_DIR(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--data-dir DIR`` and ``--database URL``."""
    return DATABASE(_DATA_DIR(command))


def database_for(data_dir: Path, config_database: str | None = None) -> str | None:
    """The store's database URL: ``--database``, else the configuration's ``database:``
    (``config_database``, or DATA_DIR/csms.yaml's), else None for DATA_DIR/csms.sqlite."""
    ctx = click.get_current_context(silent=True)
    given = None if ctx is None else ctx.meta.get(_DATABASE_KEY)
    if given:
        return str(given)
    if config_database is None:
        config_file = data_dir / "csms.yaml"
        config_database = load_config(config_file).database if config_file.is_file() else ""
    return config_database or None


TLS_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
TOLERANCE = click.option(
    "--tolerance",
    type=click.Choice(["strict", "tolerant"]),
    default=None,
    help="strict: schema errors are CALLERRORs; tolerant: known real-hardware habits are"
    " repaired, logged and counted.",
)


class _Watts(click.ParamType):
    name = "W|none"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        text = str(value)
        if text == "none" or (text.isdigit() and int(text) <= 1_000_000):
            return text
        self.fail(f"{value!r} is not a power in whole W (0 to 1000000) or 'none'", param, ctx)


WATTS = _Watts()


class _PowerKey(click.ParamType):
    name = "KEY[:W|:kW]|none"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        text = str(value)
        if text == "none":
            return text
        try:
            parse_power_key(text)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return text


POWER_KEY = _PowerKey()

SECURITY_PROFILE = click.option(
    "--security-profile",
    "profile",
    type=click.Choice(["1", "2", "3", "default"]),
    default=None,
    help="The station's own security profile (e.g. 2 for a station without a certificate"
    " on a profile-3 CSMS); 'default' follows the CSMS's.",
)

TOKEN_TYPES = [
    "Central",
    "eMAID",
    "ISO14443",
    "ISO15693",
    "KeyCode",
    "Local",
    "MacAddress",
    "NoAuthorization",
]


def run_async(
    func: Callable[[], Awaitable[T]],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> T:
    """Run a coroutine, turning the CSMS's own errors into one clean line."""
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(func())  # type: ignore[arg-type]
    except CsmsError as exc:
        raise click.ClickException(str(exc)) from None


async def with_store(
    data_dir: Path, action: Callable[[CsmsStore], Awaitable[T]], *, create: bool = False
) -> T:
    """Run ``action`` on the data directory's store. Only commands that register something
    (``create``) make a new data directory; the others refuse a missing one."""
    from csms.store.sqlite import DB_NAME

    database = database_for(data_dir)
    if not create and database is None and not (data_dir / DB_NAME).is_file():
        raise CsmsError(f"{data_dir}: not a CSMS data directory (no {DB_NAME} in it)")
    if not create and database is not None and not data_dir.is_dir():
        raise CsmsError(f"{data_dir}: not a CSMS data directory (no such directory)")
    if create:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CsmsError(
                f"{data_dir}: cannot create the data directory: {exc.strerror}"
            ) from None
    store = await CsmsStore.open_data_dir(data_dir, database)
    try:
        return await action(store)
    finally:
        await store.close()


@click.command("csms")
@DATA_DIR
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 9000).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML configuration file (default: DATA_DIR/csms.yaml if present).",
)
@click.option(
    "--security-profile",
    type=click.IntRange(1, 3),
    default=None,
    help="1: Basic auth over ws://; 2: TLS + Basic auth; 3: mutual TLS"
    " (default: 3 with --tls-ca, 2 with --tls-cert, else the config file's).",
)
@click.option("--tls-cert", type=TLS_FILE, default=None, help="PEM server certificate.")
@click.option("--tls-key", type=TLS_FILE, default=None, help="PEM private key of --tls-cert.")
@click.option(
    "--tls-ca", type=TLS_FILE, default=None, help="PEM CA of station certificates (profile 3)."
)
@click.option("--http-host", default=None, help="Dashboard/API address (default 127.0.0.1).")
@click.option(
    "--http-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Dashboard/API port (default 8080; 0 picks a free one).",
)
@click.option(
    "--genesis",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="genesis.json of running validators (from `v2g ledger init`); without it an"
    " embedded set of 4 validators runs under DATA_DIR/ledger.",
)
@click.option(
    "--process-name",
    default=None,
    help="This process's name among CSMS processes sharing a PostgreSQL database"
    " (default: 'process_name:' in the config, else HOST:PID).",
)
def csms_command(
    data_dir: Path,
    host: str | None,
    port: int | None,
    config_path: Path | None,
    security_profile: int | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
    http_host: str | None,
    http_port: int | None,
    genesis: Path | None,
    process_name: str | None,
) -> None:
    """Run the CSMS: an OCPP websocket server at ws[s]://HOST:PORT/ocpp/<stationId>."""
    from csms.app import start_csms
    from csms.web.server import WebBindError, bind_reason

    if config_path is None and (data_dir / "csms.yaml").is_file():
        config_path = data_dir / "csms.yaml"
    if security_profile is None and tls_cert is not None:
        security_profile = 3 if tls_ca is not None else 2
    if process_name is not None and process_name_problem(process_name):
        raise click.BadParameter(
            str(process_name_problem(process_name)), param_hint="--process-name"
        )
    try:
        config = load_config(config_path).with_overrides(
            host=host,
            port=port,
            security_profile=security_profile,
            tls_cert=None if tls_cert is None else str(tls_cert.resolve()),
            tls_key=None if tls_key is None else str(tls_key.resolve()),
            tls_ca=None if tls_ca is None else str(tls_ca.resolve()),
            genesis=None if genesis is None else str(genesis.resolve()),
            http_host=http_host,
            http_port=http_port,
            process_name=process_name,
        )
        config = config.with_overrides(database=database_for(data_dir, config.database))
        check_security(config, "command line")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        app = await start_csms(
            data_dir,
            config,
            serve_web=True,
            ledger="external" if config.genesis else "embedded",
            compile_schemas=True,
        )
        gc_pacing.freeze_start_up_heap()  # no collection walks it again (csms.gc_pacing)
        scheme = "ws" if config.security_profile == 1 else "wss"
        click.echo(
            f"CSMS listening on {scheme}://{config.host}:{app.port}/ocpp/<stationId>"
            f" (security profile {config.security_profile})",
            err=True,
        )
        if app.web is not None:
            click.echo(f"dashboard on http://{config.http_host}:{app.web.port}/", err=True)
        try:
            await stop.wait()
        finally:
            await app.stop()

    try:
        run_async(serve, event_loop.new_event_loop)  # a burst of stations spread over passes
    except WebBindError as exc:
        raise click.ClickException(f"{exc} (change it with --http-port)") from None
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {config.host}:{config.port}: {bind_reason(exc)}"
            " (change it with --port)"
        ) from None


@click.group("stations")
def stations_group() -> None:
    """Manage the station registry (ids, passwords, meter keys)."""


@stations_group.command("add")
@click.argument("station_id")
@click.option("--password", required=True, help="The station's Basic-auth password.")
@click.option(
    "--meter-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Public key of the station's signing meter (P-256: PEM, DER or oca:base16:asn1).",
)
@TOLERANCE
@SECURITY_PROFILE
@DATA_DIR
def stations_add(
    station_id: str,
    password: str,
    meter_key: Path | None,
    tolerance: str | None,
    profile: str | None,
    data_dir: Path,
) -> None:
    """Register STATION_ID with a password (stored as a salted scrypt hash)."""
    from csms.station_import import password_problem, station_id_problem

    problem = station_id_problem(station_id)
    if problem:
        raise click.BadParameter(problem, param_hint="STATION_ID")
    problem = password_problem(password)
    if problem:
        raise click.BadParameter(problem, param_hint="--password")
    key_text = read_meter_key(meter_key) if meter_key else None
    hashed = hash_password(password)

    async def add(store: CsmsStore) -> None:
        mac = password_mac(load_credential_key(data_dir), station_id, hashed, password)
        created = format_timestamp(utc_now())
        await store.add_station(station_id, hashed, created, key_text, password_mac=mac)
        if tolerance is not None:
            await store.set_tolerance(station_id, tolerance)
        if profile not in (None, "default"):
            await store.set_security_profile(station_id, int(profile))

    run_async(lambda: with_store(data_dir, add, create=True))
    click.echo(f"station {station_id} registered")


def _watts(value: str | None) -> int | Keep | None:
    return KEEP if value is None else None if value == "none" else int(value)


def read_meter_key(path: Path) -> str:
    """The PEM text to register for a meter key file; a clean error for anything else."""
    from csms.evidence import MeterKeyError, load_meter_public_key, public_key_pem

    try:
        return public_key_pem(load_meter_public_key(path))
    except MeterKeyError as exc:
        raise click.ClickException(str(exc)) from None


@stations_group.command("set")
@click.argument("station_id")
@TOLERANCE
@SECURITY_PROFILE
@click.option(
    "--discharge",
    type=click.Choice(DISCHARGE_MODES),
    default=None,
    help=f"Whether the station can be sent discharge: {NEGATIVE_LIMIT_201} declares a 2.0.1"
    " station that takes a negative limit as discharge (2.0.1 does not define it); none (the"
    " default) dispatches a 2.0.1 station charge only. 2.1 stations follow the EV's needs.",
)
@click.option(
    "--max-charge-w",
    type=WATTS,
    default=None,
    help="Operator cap on the charging power the dispatcher asks of this station (W, or none).",
)
@click.option(
    "--max-discharge-w",
    type=WATTS,
    default=None,
    help="Operator cap on the discharging power the dispatcher asks of this station (W, or none).",
)
@click.option(
    "--max-power-w",
    type=WATTS,
    default=None,
    help="The station's rated power (W > 0; none: the rating it reported, if lower than the"
    " CSMS's max_station_power_w, else that): a session whose energy between two signed"
    " readings passes it (plus 10 % and 1 Wh) is flagged implausible_energy and never signed.",
)
@click.option(
    "--power-key",
    type=POWER_KEY,
    default=None,
    help="OCPP 1.6: the configuration key in which the station reports its power rating"
    " (KEY for W, KEY:kW for kW; none forgets it); read from every GetConfiguration answer.",
)
@click.option(
    "--meter-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Replace the meter's public key (P-256: PEM, DER or oca:base16:asn1).",
)
@click.option(
    "--password",
    default=None,
    help="A new Basic-auth password (a running CSMS drops connections made with the old one).",
)
@DATA_DIR
def stations_set(
    station_id: str,
    tolerance: str | None,
    profile: str | None,
    discharge: str | None,
    max_charge_w: str | None,
    max_discharge_w: str | None,
    max_power_w: str | None,
    power_key: str | None,
    meter_key: Path | None,
    password: str | None,
    data_dir: Path,
) -> None:
    """Change settings of a registered STATION_ID.

    Tolerance and security profile take effect on its next connection; dispatch settings on
    the dispatcher's next pass. A new meter key applies to sessions settled from now on;
    ``v2g sessions resettle ID`` re-checks a session flagged under the old key.
    """
    dispatch = (discharge, max_charge_w, max_discharge_w, power_key)
    settings = (tolerance, profile, meter_key, password, max_power_w, *dispatch)
    if all(v is None for v in settings):
        raise click.UsageError(
            "nothing to set: give --password, --tolerance, --security-profile, --meter-key,"
            " --discharge, --max-charge-w, --max-discharge-w, --power-key and/or --max-power-w"
        )
    if max_power_w == "0":
        raise click.BadParameter("a rated power must be above 0 W", param_hint="--max-power-w")
    from csms.station_import import password_problem

    problem = None if password is None else password_problem(password)
    if problem:
        raise click.BadParameter(problem, param_hint="--password")
    key_text = read_meter_key(meter_key) if meter_key else None
    hashed = None if password is None else hash_password(password)

    async def update(store: CsmsStore) -> None:
        if await store.get_station(station_id) is None:
            raise CsmsError(f"station {station_id!r} is not registered")
        if hashed is not None and password is not None:
            mac = password_mac(load_credential_key(data_dir), station_id, hashed, password)
            await store.update_station_secret(station_id, hashed, None, password_mac=mac)
        if key_text is not None:
            await store.set_meter_key(station_id, key_text)
        if tolerance is not None:
            await store.set_tolerance(station_id, tolerance)
        if profile is not None:
            await store.set_security_profile(
                station_id, None if profile == "default" else int(profile)
            )
        if any(v is not None for v in dispatch):
            await store.set_station_caps(
                station_id,
                discharge=KEEP if discharge is None else discharge,
                max_charge_w=_watts(max_charge_w),
                max_discharge_w=_watts(max_discharge_w),
                power_key=KEEP if power_key is None else None if power_key == "none" else power_key,
            )
        if max_power_w is not None:
            await store.set_max_power(
                station_id, None if max_power_w == "none" else int(max_power_w)
            )

    run_async(lambda: with_store(data_dir, update))
    changes = ["password changed"] if hashed else []
    changes += [f"tolerance {tolerance}"] if tolerance else []
    changes += [f"security profile {profile}"] if profile else []
    changes += [f"discharge {discharge}"] if discharge else []
    changes += [f"max charge {max_charge_w} W"] if max_charge_w else []
    changes += [f"max discharge {max_discharge_w} W"] if max_discharge_w else []
    changes += [f"rated power {max_power_w} W"] if max_power_w else []
    changes += [f"power key {power_key}"] if power_key else []
    changes += ["meter key replaced"] if key_text else []
    click.echo(f"station {station_id}: {', '.join(changes)}")


@stations_group.command("list")
@DATA_DIR
def stations_list(data_dir: Path) -> None:
    """List registered stations; on a PostgreSQL database also which CSMS process holds each
    connected station."""
    from csms.store.leases import Lease, live_leases

    async def fetch(store: CsmsStore) -> tuple[list[StationRecord], dict[str, Lease], bool]:
        shared = store.dialect.name == "postgresql"
        return await store.list_stations(), await live_leases(store), shared

    stations, leases, shared = run_async(lambda: with_store(data_dir, fetch))
    if not stations:
        click.echo("no stations registered")
        return
    rows = [
        (
            s.station_id,
            f"{s.vendor or ''} {s.model or ''}".strip() or "-",
            "yes" if s.meter_key else "no",
            s.tolerance,
            str(s.security_profile or "csms"),
            "pending" if is_pending(s.password_hash) else "hashed",
            utc_text(s.last_seen_at, missing="never"),
        )
        + ((leases[s.station_id].process if s.station_id in leases else "-",) if shared else ())
        for s in stations
    ]
    header: tuple[str, ...] = ("STATION", "MODEL", "METER KEY", "TOLERANCE", "PROFILE", "PASSWORD")
    header += ("LAST SEEN (UTC)",) + (("PROCESS",) if shared else ())
    click.echo(render_table(header, rows), nl=False)


@stations_group.command("remove")
@click.argument("station_id")
@DATA_DIR
def stations_remove(station_id: str, data_dir: Path) -> None:
    """Remove STATION_ID from the registry."""

    async def remove(store: CsmsStore) -> bool:
        return await store.remove_station(station_id)

    if not run_async(lambda: with_store(data_dir, remove)):
        raise click.ClickException(f"station {station_id!r} is not registered")
    click.echo(f"station {station_id} removed")


@click.group("tokens")
def tokens_group() -> None:
    """Manage the identity registry of idTokens."""


@tokens_group.command("add")
@click.argument("token")
@click.option("--type", "token_type", type=click.Choice(TOKEN_TYPES), default="ISO14443")
@click.option(
    "--payment", type=click.Choice(["invoice", "ledger"]), default="invoice", show_default=True
)
@click.option(
    "--status",
    type=click.Choice(["Accepted", "Blocked", "Invalid", "NoCredit"]),
    default="Accepted",
    show_default=True,
)
@click.option("--expires", default=None, help="RFC 3339 expiry time (with timezone).")
@DATA_DIR
def tokens_add(
    token: str,
    token_type: str,
    payment: str,
    status: str,
    expires: str | None,
    data_dir: Path,
) -> None:
    """Register an idToken with its payment method."""
    from csms.timeutil import parse_timestamp

    if not 0 < len(token) <= 36:
        raise click.BadParameter("1 to 36 characters", param_hint="TOKEN")
    if expires is not None:
        try:
            expires = format_timestamp(parse_timestamp(expires))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--expires") from None
    record = TokenRecord(token, token_type, status, payment, expires, format_timestamp(utc_now()))

    async def add(store: CsmsStore) -> None:
        await store.add_token(record)

    run_async(lambda: with_store(data_dir, add, create=True))
    click.echo(f"token {token} ({token_type}) registered")


@tokens_group.command("list")
@DATA_DIR
def tokens_list(data_dir: Path) -> None:
    """List registered idTokens."""

    async def fetch(store: CsmsStore) -> list[TokenRecord]:
        return await store.list_tokens()

    tokens = run_async(lambda: with_store(data_dir, fetch))
    if not tokens:
        click.echo("no tokens registered")
        return
    rows = [
        (
            t.id_token,
            t.type,
            t.status,
            t.payment,
            utc_text(t.expires_at, missing="never"),
            utc_text(t.created_at),
        )
        for t in tokens
    ]
    header = ("TOKEN", "TYPE", "STATUS", "PAYMENT", "EXPIRES (UTC)", "ADDED (UTC)")
    click.echo(render_table(header, rows), nl=False)


@tokens_group.command("remove")
@click.argument("token")
@click.option("--type", "token_type", type=click.Choice(TOKEN_TYPES), default=None)
@DATA_DIR
def tokens_remove(token: str, token_type: str | None, data_dir: Path) -> None:
    """Remove an idToken (of every type unless --type is given)."""

    async def remove(store: CsmsStore) -> int:
        return await store.remove_token(token, token_type)

    if not run_async(lambda: with_store(data_dir, remove)):
        raise click.ClickException(f"token {token!r} is not registered")
    click.echo(f"token {token} removed")


@tokens_group.command("issue-temporary")
@click.option("--vin", default=None, help="The EV's VIN (17 characters).")
@click.option("--phone", default=None, help="The driver's phone number (E.164, e.g. +4915...).")
@click.option("--payment-ref", required=True, help="Payment reference (kept encrypted).")
@click.option(
    "--payment", type=click.Choice(["invoice", "ledger"]), default="invoice", show_default=True
)
@click.option("--ttl-minutes", type=click.IntRange(1, 7 * 24 * 60), default=240, show_default=True)
@DATA_DIR
def tokens_issue_temporary(
    vin: str | None,
    phone: str | None,
    payment_ref: str,
    payment: str,
    ttl_minutes: int,
    data_dir: Path,
) -> None:
    """As the aggregator: register an unregistered EV and issue a temporary idToken (Central).

    The VIN or phone number and the payment reference are stored encrypted
    (DATA_DIR/keys/personal.key); settlements name the EV only by its keyed pseudonym.
    """
    from datetime import timedelta

    from csms.app import key_path, read_or_create_key
    from csms.identity import (
        IdentityError,
        PseudonymKey,
        encrypt_personal,
        ev_pseudonym,
        issue_temporary_id,
        personal_data,
    )

    if (vin is None) == (phone is None):
        raise click.UsageError("give exactly one of --vin and --phone")
    try:
        personal = personal_data(vin=vin, phone=phone, payment_reference=payment_ref)
        temporary = issue_temporary_id(
            personal, payment=payment, now=utc_now(), ttl=timedelta(minutes=ttl_minutes)
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        blob = encrypt_personal(
            personal,
            read_or_create_key(key_path(data_dir, "personal.key")),
            bound_to=temporary.id_token,
        )
        pseudonym_key = PseudonymKey(1, read_or_create_key(key_path(data_dir, "pseudonym.key")))
    except IdentityError as exc:
        raise click.UsageError(str(exc)) from None
    record = TokenRecord(
        temporary.id_token,
        temporary.token_type,
        "Accepted",
        temporary.payment,
        format_timestamp(temporary.expires_at),
        format_timestamp(temporary.issued_at),
        pseudonym=ev_pseudonym(temporary, pseudonym_key),
        personal=blob,
    )

    async def add(store: CsmsStore) -> None:
        await store.add_token(record)

    run_async(lambda: with_store(data_dir, add, create=True))
    click.echo(temporary.id_token)
    click.echo(f"type Central, valid until {record.expires_at}", err=True)
