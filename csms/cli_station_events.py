"""``v2g stations events``: what a station reported beyond its transactions
(``csms.store.station_events``), newest first, as a table or JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

import click

from csms.cli import DATA_DIR, run_async, stations_group, with_store
from csms.store.sqlite import CsmsStore
from csms.store.station_events import StationEvent, StationEventsStore
from ledger.tables import render_table, utc_text

__all__ = ["stations_group"]


@stations_group.command("events")
@click.argument("station_id")
@click.option("--action", default=None, help="only this action, e.g. NotifyEvent")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="newest N"
)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line, with payload")
@DATA_DIR
def stations_events(
    station_id: str, action: str | None, limit: int, as_json: bool, data_dir: Path
) -> None:
    """What STATION_ID reported beyond transactions (NotifyEvent, charging limits, profile
    reports, EV schedules, DER, settlements, firmware/diagnostics/log status), newest first."""

    async def fetch(store: CsmsStore) -> list[StationEvent] | None:
        if await store.get_station(station_id) is None:
            return None
        return await StationEventsStore(store).latest(station_id, limit=limit, action=action)

    events = run_async(lambda: with_store(data_dir, fetch))
    if events is None:
        raise click.ClickException(f"station {station_id!r} is not registered")
    if as_json:
        for e in events:
            record = {
                "id": e.id,
                "action": e.action,
                "evse_id": e.evse_id,
                "summary": e.summary,
                "received_at": e.received_at,
                "payload": e.payload,
            }
            click.echo(json.dumps(record, separators=(",", ":"), ensure_ascii=False))
        return
    if not events:
        click.echo(f"no events from {station_id}")
        return
    rows = [
        (utc_text(e.received_at), e.action, "-" if e.evse_id is None else str(e.evse_id), e.summary)
        for e in events
    ]
    click.echo(render_table(("RECEIVED (UTC)", "ACTION", "EVSE", "SUMMARY"), rows), nl=False)
