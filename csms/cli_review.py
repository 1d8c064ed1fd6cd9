"""``v2g operators``, ``v2g sessions`` and ``v2g dashboard``: review of what was settled."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from csms.cli import DATA_DIR, database_for, run_async, with_store
from csms.errors import CsmsError
from csms.operators import ROLES, OperatorError, OperatorRegistry
from csms.reports import CdrParty, cdr, cdr_array_end, cdr_array_item, csv_rows, csv_text
from csms.review import LIST_PAGE, SessionRow, iter_rows, load_detail
from csms.store.sqlite import CsmsStore
from csms.timeutil import format_timestamp, utc_now
from ledger.tables import amount_text, kwh_text, render_table, utc_text

log = logging.getLogger(__name__)


# -- operators -------------------------------------------------------------------------------


@click.group("operators")
def operators_group() -> None:
    """Operators (read and act) and auditors (read) of the review API and dashboard."""


@operators_group.command("add")
@click.argument("name")
@click.option("--password", required=True, help="At least 8 characters; stored as scrypt.")
@click.option("--role", type=click.Choice(ROLES), default="operator", show_default=True)
@DATA_DIR
def operators_add(name: str, password: str, role: str, data_dir: Path) -> None:
    """Add an operator or auditor."""
    if len(password) < 8:
        raise click.BadParameter("at least 8 characters", param_hint="--password")

    async def add(store: CsmsStore) -> None:
        await OperatorRegistry(store).add(name, password, role, format_timestamp(utc_now()))

    run_async(lambda: with_store(data_dir, add, create=True))
    click.echo(f"added {role} {name}")


@operators_group.command("list")
@DATA_DIR
def operators_list(data_dir: Path) -> None:
    """List operators and auditors (never their passwords)."""

    async def list_all(store: CsmsStore) -> list[Any]:
        return await OperatorRegistry(store).list()

    operators = run_async(lambda: with_store(data_dir, list_all))
    if not operators:
        click.echo("no operators registered")
        return
    rows = [(o.name, o.role, utc_text(o.created_at)) for o in operators]
    click.echo(render_table(("NAME", "ROLE", "ADDED (UTC)"), rows), nl=False)


@operators_group.command("passwd")
@click.argument("name")
@click.option(
    "--password",
    prompt="New password",
    hide_input=True,
    confirmation_prompt=True,
    help="The new password (at least 8 characters); asked for when not given.",
)
@DATA_DIR
def operators_passwd(name: str, password: str, data_dir: Path) -> None:
    """Set a new password for an operator or auditor."""

    async def change(store: CsmsStore) -> bool:
        return await OperatorRegistry(store).set_password(name, password)

    if not run_async(lambda: with_store(data_dir, change)):
        raise click.ClickException(f"no operator {name!r}")
    click.echo(f"password of {name} changed")


@operators_group.command("remove")
@click.argument("name")
@DATA_DIR
def operators_remove(name: str, data_dir: Path) -> None:
    """Remove an operator or auditor."""

    async def remove(store: CsmsStore) -> bool:
        return await OperatorRegistry(store).remove(name)

    if not run_async(lambda: with_store(data_dir, remove)):
        raise click.ClickException(f"no operator {name!r}")
    click.echo(f"removed {name}")


# -- sessions --------------------------------------------------------------------------------


def table(rows: list[SessionRow], *, header: bool = True) -> str:
    """One line per session, its credits indented below it; energy in kWh, amounts in
    currency units (> 0 the driver pays), times in UTC. Without the header line when
    ``header`` is False (a later page of a long list, aligned on its own)."""
    columns = (
        "SETTLEMENT",
        "STARTED (UTC)",
        "ENDED (UTC)",
        "STATION",
        "IMPORT kWh",
        "EXPORT kWh",
        "AMOUNT",
        "STATUS",
        "REASON",
    )
    lines: list[tuple[str, ...]] = []
    for r in rows:
        lines.append(
            (
                r.settlement_id or r.id,
                utc_text(r.started_at),
                utc_text(r.ended_at),
                r.station_id,
                kwh_text(r.import_wh),
                kwh_text(r.export_wh),
                amount_text(r.amount, r.currency),
                r.status,
                r.reason or "",
            )
        )
        for c in r.credits:
            lines.append(
                (
                    f"credit {c.settlement_id}",
                    utc_text(c.created_at),
                    "",
                    "",
                    "",
                    "",
                    amount_text(c.amount, c.currency),
                    c.status,
                    c.reason or "",
                )
            )
    text = render_table(columns, lines, right={4, 5, 6})
    return text if header else text.split("\n", 1)[1]


@click.group("sessions")
def sessions_group() -> None:
    """List, show and export settled sessions."""


TABLE_LIMIT = 100  # sessions the table shows unless --limit says otherwise


@sessions_group.command("list")
@DATA_DIR
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help=f"The newest N sessions (0: all). Default: {TABLE_LIMIT} for the table, all for json "
    "and csv.",
)
def sessions_list(data_dir: Path, fmt: str, limit: int | None) -> None:
    """List sessions with their settlement id, energy, amount and status (newest first).

    Written as it is read, a page of sessions at a time, so memory stays bounded however
    many there are."""
    if limit is None:
        limit = TABLE_LIMIT if fmt == "table" else 0

    async def write_all(store: CsmsStore) -> None:
        more = await write_sessions(store, fmt, limit, sys.stdout.write)
        if more:
            click.echo(f"(the newest {limit} shown; --limit 0 lists all)", err=True)

    run_async(lambda: with_store(data_dir, write_all))


async def write_sessions(
    store: CsmsStore,
    fmt: str,
    limit: int,
    write: Callable[[str], object],
    *,
    page: int = LIST_PAGE,
) -> bool:
    """Write the newest ``limit`` sessions (0: all) as ``fmt``, a page at a time; True if
    more were left out. The JSON is the same text as ``json.dumps(rows, indent=2)``."""
    count, more = 0, False
    if fmt == "csv":
        write(csv_text([], header=True))
    # one row past the limit is read to tell whether more were left
    async for page_rows in iter_rows(store, page=page, limit=limit + 1 if limit else None):
        rows = page_rows if not limit else page_rows[: limit - count]
        more = more or len(rows) < len(page_rows)
        if not rows:
            continue
        if fmt == "csv":
            write(csv_text(rows, header=False))
        elif fmt == "json":
            for n, item in enumerate(csv_rows(rows), count):
                text = textwrap.indent(json.dumps(item, indent=2), "  ")
                write(("[\n" if n == 0 else ",\n") + text)
        else:
            write(table(list(rows), header=count == 0))
        count += len(rows)
    if fmt == "json":
        write("[]\n" if count == 0 else "\n]\n")
    elif fmt == "table" and count == 0:
        write("no sessions\n")
    return more


@sessions_group.command("show")
@click.argument("review_id", metavar="ID")
@DATA_DIR
def sessions_show(review_id: str, data_dir: Path) -> None:
    """Show one session (settlement id or STATION:TRANSACTION) as JSON."""
    from csms.web.models import detail_out

    async def load(store: CsmsStore) -> dict[str, Any] | None:
        detail = await load_detail(store, review_id)
        return None if detail is None else detail_out(detail, None).model_dump()

    data = run_async(lambda: with_store(data_dir, load))
    if data is None:
        raise click.ClickException(f"no session or settlement {review_id!r}")
    click.echo(json.dumps(data, indent=2))


@sessions_group.command("resettle")
@click.argument("review_id", metavar="ID")
@click.option("--as", "name", required=True, help="The operator doing it (role operator).")
@DATA_DIR
def sessions_resettle(review_id: str, name: str, data_dir: Path) -> None:
    """Re-check a flagged session's evidence with the station's current meter key and settle
    it when it now passes (the running CSMS submits it); logged with who did it."""
    from csms.app import settlement_setup_for
    from csms.config import load_config
    from csms.review import find_session
    from csms.settling import session_closer

    if not data_dir.is_dir():
        raise click.ClickException(f"{data_dir}: no such data directory")
    config_path = data_dir / "csms.yaml"
    try:
        config = load_config(config_path if config_path.is_file() else None)
        setup = settlement_setup_for(data_dir, config)
    except CsmsError as exc:
        raise click.ClickException(str(exc)) from None

    async def resettle(store: CsmsStore) -> tuple[str, str | None]:
        operator = await OperatorRegistry(store).get(name)
        if operator is None or not operator.can_act:
            raise OperatorError(f"{name!r} is not a registered operator with the operator role")
        found = await find_session(store, review_id)
        if found is None:
            raise OperatorError(f"no session {review_id!r}")
        store.session_closer = session_closer(setup)
        outcome = await store.resettle(*found, by=name, at=format_timestamp(utc_now()))
        log.info("%s re-settled %s: %s", name, review_id, outcome.reason or outcome.status)
        return outcome.status, outcome.reason

    status, reason = run_async(lambda: with_store(data_dir, resettle))
    if status == "pending":
        click.echo(f"{review_id}: evidence holds now; settled, awaiting commit")
    else:
        raise click.ClickException(f"{review_id}: still flagged: {reason}")


@sessions_group.command("export")
@DATA_DIR
@click.option("--format", "fmt", type=click.Choice(["csv", "ocpi"]), required=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--country-code", default="DE", show_default=True, help="OCPI country code.")
@click.option("--party-id", default="V2G", show_default=True, help="OCPI party id.")
def sessions_export(
    data_dir: Path, fmt: str, output: Path | None, country_code: str, party_id: str
) -> None:
    """Export as CSV, or as OCPI 2.2.1 CDR JSON (one CDR per settlement and per credit).

    Written as it is read, a page of sessions or settlements at a time, so memory stays
    bounded however many there are; --output is written to a temporary file beside it and
    renamed into place once complete."""
    party = CdrParty(country_code=country_code.upper(), party_id=party_id.upper())

    async def export(store: CsmsStore) -> None:
        with _sink(output) as write:
            if fmt == "csv":
                write(csv_text([], header=True))
                async for rows in iter_rows(store):
                    write(csv_text(rows, header=False))
            else:
                await write_cdrs(store, party, write)

    run_async(lambda: with_store(data_dir, export))
    if output is not None:
        click.echo(f"wrote {output}", err=True)


EXPORT_PAGE = 200  # settlements read at once by the OCPI export


async def write_cdrs(
    store: CsmsStore, party: CdrParty, write: Callable[[str], object], *, page: int = EXPORT_PAGE
) -> int:
    """Every settled session's and credit's CDR as one JSON array, in settlement id order,
    ``page`` settlements read at a time; returns how many."""
    count, after = 0, None
    write("[")
    while True:
        records = await store.settlements_after(after, page, settled_only=True)
        for record in records:
            session = await store.get_session(record.station_id, record.transaction_id)
            if session is None:
                continue
            samples = await store.meter_samples(record.station_id, record.transaction_id)
            station = await store.get_station(record.station_id)
            key = station.meter_key if station else None
            write(cdr_array_item(cdr(record, session, samples, party, meter_key=key), count == 0))
            count += 1
        if len(records) < page:
            break
        after = records[-1].settlement_id
    write(cdr_array_end(count))
    return count


@contextlib.contextmanager
def _sink(output: Path | None) -> Iterator[Callable[[str], object]]:
    """Where an export is written: stdout, or ``output`` once complete (never half of it)."""
    if output is None:
        yield sys.stdout.write
        return
    partial = output.with_name(f".{output.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as file:
            yield file.write
        partial.replace(output)
    except OSError as exc:
        raise click.ClickException(f"{output}: cannot write: {exc.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)


# -- dashboard -------------------------------------------------------------------------------


@click.command("dashboard")
@DATA_DIR
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
def dashboard_command(data_dir: Path, host: str, port: int) -> None:
    """Serve a read-only dashboard and API of a data dir (no OCPP server, no actions)."""
    from csms.web.chain import ledger_root
    from csms.web.deps import ReviewDeps
    from csms.web.server import WebBindError, start_web

    if not data_dir.is_dir():
        raise click.ClickException(f"{data_dir}: no such data dir")
    try:
        database = database_for(data_dir)
    except CsmsError as exc:
        raise click.ClickException(str(exc)) from None

    async def serve() -> None:
        store = await CsmsStore.open_data_dir(data_dir, database)
        root = ledger_root(data_dir)
        genesis = None if root is None else root / "genesis.json"
        deps = ReviewDeps(store=store, data_dir=data_dir, genesis_path=genesis)
        try:
            web = await start_web(deps, host, port)
        except WebBindError as exc:
            await store.close()
            raise click.ClickException(f"{exc} (change it with --port)") from None
        click.echo(f"dashboard (read-only) on http://{host}:{web.port}/", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await web.stop()
            await store.close()

    run_async(serve)
