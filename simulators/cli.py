"""``v2g simulate`` and ``v2g demo``: fleets of simulated V2G sessions against the CSMS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chargepoint.errors import ChargePointError
from csms.cli import DATABASE, database_for
from csms.config import load_config
from csms.errors import CsmsError
from csms.operators import OperatorRegistry
from csms.store.sqlite import CsmsStore
from csms.timeutil import format_timestamp, utc_now
from csms.web.server import WebBindError
from simulators.run import FleetRun, embedded_csms, run_scenario, simulation_config
from simulators.scenario import Scenario, ScenarioError, load_scenario
from simulators.summary import Summary

console = Console(stderr=True)


def summary_table(summary: Summary) -> Table:
    table = Table(title="Fleet run", show_header=True, header_style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("stations", summary.stations),
        ("sessions", summary.sessions),
        ("settled and committed", summary.committed),
        ("flagged or rejected", summary.flagged),
        ("still pending", summary.pending),
        ("energy imported (kWh)", f"{summary.import_kwh:,.3f}"),
        ("energy exported (kWh)", f"{summary.export_kwh:,.3f}"),
        ("net amount (currency)", f"{summary.amount_total:,.2f}"),
        ("commit latency p50 (ms)", summary.commit_latency_p50_ms or "-"),
        ("commit latency p99 (ms)", summary.commit_latency_p99_ms or "-"),
        ("departure targets met", summary.targets_met),
        ("departure targets missed", summary.targets_missed),
        ("departure targets out of reach", summary.targets_out_of_reach),
        ("errors", summary.errors),
        ("wall time (s)", summary.wall_seconds),
        ("simulated-time speed (asked)", f"{summary.speed or 0:,.0f}x"),
        (
            "simulated-time speed (achieved)",
            "-" if summary.achieved_speed is None else f"{summary.achieved_speed:,.0f}x",
        ),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool) -> Iterator[Callable[[int, int, int], None]]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=not enabled, transient=False) as bar:
        ended = bar.add_task("sessions ended ", total=total)
        final = bar.add_task("settled (final)", total=total)

        def update(n_ended: int, n_final: int, n_total: int) -> None:
            bar.update(ended, completed=n_ended, total=n_total)
            bar.update(final, completed=n_final, total=n_total)

        yield update


def report(run: FleetRun, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({**run.summary.to_json(), "error_lines": run.errors}, indent=2))
    else:
        console.print(summary_table(run.summary))
        if (line := run.summary.speed_line()) is not None:
            console.print(f"[yellow]note[/yellow] {line}")
    for line in run.errors[:20]:
        console.print(f"[red]error[/red] {line}")


@contextlib.asynccontextmanager
async def open_store(data_dir: Path, database: str | None) -> AsyncIterator[CsmsStore]:
    store = await CsmsStore.open_data_dir(data_dir, database)
    try:
        yield store
    finally:
        await store.close()


@click.command("simulate")
@click.option(
    "--scenario",
    "scenario_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="YAML scenario (stations, EVSEs, arrivals, batteries, V2G share, speed, ...).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".v2g-sim"),
    show_default=True,
    help="CSMS data directory (the embedded CSMS's, or the running CSMS's with --csms).",
)
@click.option(
    "--csms",
    "csms_urls",
    multiple=True,
    help="ws://HOST:PORT/ocpp of a running CSMS; several (repeated or comma-separated):"
    " CSMS processes on one database, each station moving to the next when one stops answering.",
)
@click.option(
    "--genesis",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Embedded CSMS only: settle to the running validators of this genesis.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@DATABASE
def simulate_command(
    scenario_path: Path,
    data_dir: Path,
    csms_urls: tuple[str, ...],
    genesis: Path | None,
    as_json: bool,
) -> None:
    """Run a fleet scenario: real stations over real websockets; prints a summary."""
    try:
        scenario = load_scenario(scenario_path)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        database = database_for(data_dir)
    except CsmsError as exc:
        raise click.ClickException(str(exc)) from None
    urls = [url.strip() for given in csms_urls for url in given.split(",") if url.strip()]
    csms_url = ",".join(urls) if urls else None

    async def main() -> FleetRun:
        data_dir.mkdir(parents=True, exist_ok=True)
        key_dir = data_dir / "fleet-keys"
        with progress_bar(scenario.total_sessions, sys.stderr.isatty()) as progress:
            if csms_url is not None:
                await check_any_reachable(urls)
                async with open_store(data_dir, database) as store:
                    return await run_scenario(
                        scenario, store, csms_url, key_dir=key_dir, progress=progress
                    )
            config = simulation_config(scenario).with_overrides(
                genesis=None if genesis is None else str(genesis.resolve()), database=database
            )
            async with embedded_csms(data_dir, config) as app:
                url = f"ws://127.0.0.1:{app.port}/ocpp"
                return await run_scenario(
                    scenario, app.store, url, key_dir=key_dir, app=app, progress=progress
                )

    try:
        run = asyncio.run(main())
    except WebBindError as exc:
        raise click.ClickException(f"{exc} (change it with --http-port)") from None
    except (CsmsError, ChargePointError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    report(run, as_json)
    if run.errors:
        sys.exit(1)


LOGIN_FILE = "demo-login.txt"


async def demo_login(registry: OperatorRegistry, data_dir: Path) -> tuple[str, str]:
    """The demo's operator login, the same every run: kept in ``DATA_DIR/demo-login.txt``
    (mode 0600). Without the file (a first run, or it was deleted) the demo operator gets
    a fresh password, written there."""
    path = data_dir / LOGIN_FILE
    name = "operator"
    with contextlib.suppress(OSError, ValueError):
        stored_name, stored_password = path.read_text(encoding="utf-8").split()[:2]
        if await registry.authenticate(stored_name, stored_password) is not None:
            return stored_name, stored_password
    password = secrets.token_urlsafe(12)
    if await registry.get(name) is None:
        await registry.add(name, password, "operator", format_timestamp(utc_now()))
    else:
        await registry.set_password(name, password)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(f"{name} {password}\n")
    path.chmod(0o600)
    return name, password


async def check_reachable(url: str, timeout_s: float = 3.0) -> None:
    """Fail fast, with one line, when nothing answers at the CSMS's address."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("ws", "wss") or not parsed.hostname:
        raise click.BadParameter(f"expected ws://HOST:PORT/ocpp, got {url!r}", param_hint="--csms")
    port = parsed.port or (443 if parsed.scheme == "wss" else 80)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parsed.hostname, port), timeout=timeout_s
        )
    except TimeoutError:
        raise click.ClickException(
            f"cannot reach the CSMS at {url}: no answer within {timeout_s:g} s"
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise click.ClickException(f"cannot reach the CSMS at {url}: {reason}") from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def check_any_reachable(urls: list[str]) -> None:
    """Fail fast when none of the CSMS addresses answers (one down is what failover is for)."""
    failures: list[click.ClickException] = []
    for url in urls:
        try:
            await check_reachable(url)
            return
        except click.BadParameter:
            raise
        except click.ClickException as exc:
            failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    raise click.ClickException("; ".join(f.message for f in failures))


@click.command("demo")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".v2g-demo"),
    show_default=True,
)
@click.option("--stations", type=click.IntRange(1, 1000), default=4, show_default=True)
@click.option("--exit", "exit_when_done", is_flag=True, help="Stop once every session is final.")
@click.option(
    "--genesis",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Settle to running validators instead of the embedded set of 4.",
)
@click.option("--http-port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--speed", type=float, default=3600.0, show_default=True, help="Time acceleration.")
@DATABASE
def demo_command(
    data_dir: Path,
    stations: int,
    exit_when_done: bool,
    genesis: Path | None,
    http_port: int,
    speed: float,
) -> None:
    """The whole system on this machine: CSMS, 4 validators, a fleet of V2G sessions, dashboard.

    EVs arrive in the afternoon; in the evening price peak V2G-willing EVs discharge; every
    session ends in a signed settlement committed by the validators. Prints the summary and the
    dashboard URL, then keeps serving until Ctrl-C (or stops at once with --exit).
    """
    if speed <= 0:
        raise click.BadParameter("must be positive", param_hint="--speed")
    scenario = Scenario(stations=stations, speed=speed)
    config_path = data_dir / "csms.yaml"
    try:
        base = load_config(config_path if config_path.is_file() else None)
        base = base.with_overrides(database=database_for(data_dir, base.database))
    except CsmsError as exc:
        raise click.ClickException(str(exc)) from None
    config = simulation_config(scenario, base).with_overrides(
        http_port=http_port, genesis=None if genesis is None else str(genesis.resolve())
    )

    async def main() -> FleetRun:
        data_dir.mkdir(parents=True, exist_ok=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        async with embedded_csms(data_dir, config, serve_web=True) as app:
            name, password = await demo_login(OperatorRegistry(app.store), data_dir)
            login = f" (log in as {name} / {password})"
            validators = "the validators of the genesis file"
            if app.embedded is not None:
                validators = f"{len(app.embedded.urls)} embedded validators"
            console.print(f"CSMS on ws://127.0.0.1:{app.port}/ocpp, {validators}")
            with progress_bar(scenario.total_sessions, sys.stderr.isatty()) as progress:
                run = await run_scenario(
                    scenario,
                    app.store,
                    f"ws://127.0.0.1:{app.port}/ocpp",
                    key_dir=data_dir / "fleet-keys",
                    app=app,
                    progress=progress,
                )
            report(run, as_json=False)
            web_port = app.web.port if app.web is not None else http_port
            console.print(f"dashboard: http://{config.http_host}:{web_port}/sessions{login}")
            if not exit_when_done:
                console.print("serving until Ctrl-C")
                await stop.wait()
            return run

    try:
        run = asyncio.run(main())
    except WebBindError as exc:
        raise click.ClickException(f"{exc} (change it with --http-port)") from None
    except (CsmsError, ChargePointError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    if run.errors or run.summary.committed < run.summary.sessions:
        sys.exit(1)
