"""``v2g chargepoint``: run a simulated OCPP 1.6J, 2.0.1 or 2.1 charging station against a CSMS."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

from chargepoint.backoff import (
    RETRY_RANDOM_RANGE,
    RETRY_REPEAT_TIMES,
    RETRY_WAIT_MINIMUM,
    Backoff,
)
from chargepoint.config import ID_TOKEN_TYPES, OCPP_VERSIONS, StationConfig
from chargepoint.connection import TlsFiles, csms_urls
from chargepoint.errors import ChargePointError
from chargepoint.ev_setup import EvOptions, ensure_meter_key, ev_meters, public_key_path
from chargepoint.meter import public_key_pem
from chargepoint.runner import runner_for
from chargepoint.session_report import SessionReport
from chargepoint.transaction import IdToken

PEM_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)  # --ca, --cert, --key


def print_session(report: SessionReport) -> None:
    """One line on stdout per ended session."""
    click.echo(report.line())


@click.command("chargepoint")
@click.argument("url")
@click.argument("station_id")
@click.option(
    "--password", default=None, help="HTTP Basic auth password (security profiles 1 and 2)."
)
@click.option(
    "--ca",
    type=PEM_FILE,
    default=None,
    help="PEM CA certificate to verify a wss:// CSMS (default: the system's CAs).",
)
@click.option(
    "--cert",
    type=PEM_FILE,
    default=None,
    help="PEM client certificate, CN = station id (security profile 3).",
)
@click.option(
    "--key",
    type=PEM_FILE,
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
    "--retry-wait-min",
    default=RETRY_WAIT_MINIMUM,
    show_default=True,
    type=click.FloatRange(0, 86400),
    help="RetryBackOffWaitMinimum: seconds before the first reconnect, doubled per failure.",
)
@click.option(
    "--retry-random-range",
    default=RETRY_RANDOM_RANGE,
    show_default=True,
    type=click.FloatRange(0, 86400),
    help="RetryBackOffRandomRange: at most this many random seconds added to each wait.",
)
@click.option(
    "--retry-repeat-times",
    default=RETRY_REPEAT_TIMES,
    show_default=True,
    type=click.IntRange(0, 32),
    help="RetryBackOffRepeatTimes: how many times the wait doubles.",
)
@click.option(
    "--meter-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Meter signing key (P-256 PEM; created 0600 if missing). Turns on the V2G EV behind "
    "an OCMF signing meter per EVSE; the public key is written to FILE.pub.pem.",
)
@click.option(
    "--print-meter-key",
    is_flag=True,
    help="Print the public PEM of --meter-key (for v2g stations add --meter-key) and exit.",
)
@click.option("--battery-kwh", default=60.0, show_default=True, type=float, help="EV battery.")
@click.option(
    "--soc", default=40.0, show_default=True, type=click.FloatRange(0, 100), help="SoC on arrival."
)
@click.option(
    "--reserve-soc",
    default=20,
    show_default=True,
    type=click.IntRange(0, 100),
    help="SoC below which the EV never discharges.",
)
@click.option(
    "--target-soc",
    default=80,
    show_default=True,
    type=click.IntRange(0, 100),
    help="SoC the EV wants at departure (the end of the session).",
)
@click.option("--max-charge-kw", default=11.0, show_default=True, type=float)
@click.option("--max-discharge-kw", default=7.0, show_default=True, type=float)
@click.option(
    "--ev-seed",
    default=None,
    type=int,
    help="Vary each EV's battery (+-20 %) and arrival SoC (+-15 points) from this seed.",
)
@click.option(
    "--evse-power-w",
    default=None,
    type=click.IntRange(min=1),
    help="Each EVSE's rating in W, reported as the device model's EVSE Power maxLimit.",
)
@click.option(
    "--schedule-wait",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 3600),
    help="Wall seconds an EV whose charging needs the CSMS accepted waits for its schedule "
    "before charging at its own limit (0: it does not wait; 2.0.1 and 2.1).",
)
@click.option(
    "--aligned-interval",
    default=900,
    show_default=True,
    type=click.IntRange(min=0),
    help="Initial AlignedDataCtrlr.Interval: signed clock-aligned readings, station seconds.",
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
    retry_wait_min: float,
    retry_random_range: float,
    retry_repeat_times: int,
    meter_key: Path | None,
    print_meter_key: bool,
    battery_kwh: float,
    soc: float,
    reserve_soc: int,
    target_soc: int,
    max_charge_kw: float,
    max_discharge_kw: float,
    ev_seed: int | None,
    evse_power_w: int | None,
    schedule_wait: float,
    aligned_interval: int,
) -> None:
    """Connect station STATION_ID to the CSMS at URL (ws[s]://host:port/ocpp or .../STATION_ID).

    URL may list several CSMS processes, comma-separated: the station moves to the next when
    one stops answering.
    """
    try:
        tls = TlsFiles(ca=ca, cert=cert, key=key) if ca or cert or key else None
        first, *others = csms_urls(url)
        config = StationConfig(
            url=first,
            fallback_urls=tuple(others),
            station_id=station_id,
            password=password,
            tls=tls,
            evses=evses,
            evse_power_w=evse_power_w,
            sessions=sessions,
            exit_when_done=exit_when_done,
            id_token=IdToken(id_token, id_token_type),
            session_seconds=session_seconds,
            speed=speed,
            tx_updated_interval=meter_interval,
            aligned_interval=aligned_interval,
            connect_timeout=connect_timeout,
            response_timeout=response_timeout,
            backoff=Backoff(retry_wait_min, retry_random_range, retry_repeat_times),
            ocpp_version=ocpp_version,
            schedule_wait=schedule_wait,
        )
        meters = None
        if meter_key is not None:
            meter_signing_key = ensure_meter_key(meter_key)
            if print_meter_key:
                click.echo(public_key_pem(meter_signing_key).decode("ascii"), nl=False)
                return
            click.echo(
                f"{station_id}: meter public key in {public_key_path(meter_key)} "
                "(register it with: v2g stations add ... --meter-key FILE)",
                err=True,
            )
            ev = EvOptions(
                battery_kwh=battery_kwh,
                soc_pct=soc,
                reserve_soc_pct=reserve_soc,
                target_soc_pct=target_soc,
                max_charge_kw=max_charge_kw,
                max_discharge_kw=max_discharge_kw,
                seed=ev_seed,
            )
            meters = ev_meters(
                meter_signing_key,
                station_id=station_id,
                evses=evses,
                options=ev,
                stay_seconds=session_seconds,
            )
        elif print_meter_key:
            raise click.UsageError("--print-meter-key needs --meter-key FILE")
        runner = runner_for(config, meters=meters, on_session=print_session)
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
