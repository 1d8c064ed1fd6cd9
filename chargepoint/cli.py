"""``v2g chargepoint``: run a simulated OCPP 1.6J, 2.0.1 or 2.1 charging station against a CSMS."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from chargepoint.backoff import Backoff
from chargepoint.config import ID_TOKEN_TYPES, OCPP_VERSIONS, StationConfig
from chargepoint.connection import TlsFiles
from chargepoint.errors import ChargePointError
from chargepoint.runner import runner_for
from chargepoint.transaction import IdToken


@click.command("chargepoint")
@click.argument("url")
@click.argument("station_id")
@click.option(
    "--password", default=None, help="HTTP Basic auth password (security profiles 1 and 2)."
)
@click.option(
    "--ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM CA certificate to verify a wss:// CSMS (default: the system's CAs).",
)
@click.option(
    "--cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM client certificate, CN = station id (security profile 3).",
)
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM private key of --cert (if not in the --cert file).",
)
@click.option(
    "--ocpp",
    "ocpp_version",
    default="2.0.1",
    show_default=True,
    type=click.Choice(OCPP_VERSIONS),
    help="OCPP version to speak (websocket subprotocol ocpp1.6, ocpp2.0.1 or ocpp2.1).",
)
@click.option("--evses", default=1, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--sessions",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Charging sessions to run (spread over the EVSEs).",
)
@click.option(
    "--exit",
    "exit_when_done",
    is_flag=True,
    help="Exit after --sessions: 0 if all went well, 1 on any error or rejection.",
)
@click.option(
    "--id-token",
    default="04E1A2B3C4D5E6",
    show_default=True,
    help="idToken presented for local sessions.",
)
@click.option(
    "--id-token-type", default="ISO14443", show_default=True, type=click.Choice(ID_TOKEN_TYPES)
)
@click.option(
    "--session-seconds",
    default=3600.0,
    show_default=True,
    type=float,
    help="Simulated length of each session, in station seconds.",
)
@click.option(
    "--meter-interval",
    default=60,
    show_default=True,
    type=click.IntRange(min=1),
    help="Initial SampledDataCtrlr.TxUpdatedInterval, in station seconds.",
)
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    type=float,
    help="Station seconds per wall second (3600: an hour per second).",
)
@click.option(
    "--connect-timeout",
    default=30.0,
    show_default=True,
    type=float,
    help="With --exit: give up after this many seconds without a connection.",
)
@click.option(
    "--response-timeout",
    default=30.0,
    show_default=True,
    type=float,
    help="Seconds to wait for the CSMS to answer a call.",
)
@click.option(
    "--max-backoff",
    default=60.0,
    show_default=True,
    type=float,
    help="Cap of the reconnect delay in seconds.",
)
def chargepoint_command(
    url: str,
    station_id: str,
    password: str | None,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
    ocpp_version: str,
    evses: int,
    sessions: int,
    exit_when_done: bool,
    id_token: str,
    id_token_type: str,
    session_seconds: float,
    meter_interval: int,
    speed: float,
    connect_timeout: float,
    response_timeout: float,
    max_backoff: float,
) -> None:
    """Connect station STATION_ID to the CSMS at URL (ws[s]://host:port/ocpp or .../STATION_ID)."""
    try:
        tls = TlsFiles(ca=ca, cert=cert, key=key) if ca or cert or key else None
        config = StationConfig(
            url=url,
            station_id=station_id,
            password=password,
            tls=tls,
            evses=evses,
            sessions=sessions,
            exit_when_done=exit_when_done,
            id_token=IdToken(id_token, id_token_type),
            session_seconds=session_seconds,
            speed=speed,
            tx_updated_interval=meter_interval,
            connect_timeout=connect_timeout,
            response_timeout=response_timeout,
            backoff=Backoff(initial=min(1.0, max_backoff), cap=max_backoff),
            ocpp_version=ocpp_version,
        )
        runner = runner_for(config)
    except (ChargePointError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    if exit_when_done and logging.getLogger().getEffectiveLevel() >= logging.WARNING:
        # the library warns about each CALLERROR; with --exit the one error line says it
        logging.getLogger("ocpp").setLevel(logging.ERROR)
    try:
        code = asyncio.run(runner.run())
    except KeyboardInterrupt:  # Ctrl-C: the normal way to stop a station run without --exit
        click.echo(f"{station_id}: interrupted", err=True)
        sys.exit(130)
    if code != 0:
        click.echo(f"v2g chargepoint: error: {runner.errors[0]}", err=True)
        sys.exit(code)
    if exit_when_done:
        click.echo(f"{station_id}: {sessions} session(s) completed")
