"""``v2g stations import`` and ``export``: the station registry as CSV (``csms.station_import``).

An import checks every row (and that no id is registered yet) before it stores anything, then
registers all the stations in one database transaction, printing progress: a bad row, or a
failure at any point, leaves the registry as it was. By default each station gets a pending
marker and its password's MAC (``csms.credentials``), no scrypt hash: the CSMS makes the hash in
the background after the station's first handshake (``csms.pending_hash``), so 10,000 rows take
seconds. ``--hash-now`` hashes every password at the production scrypt cost first, on every core
(``hashlib.scrypt`` releases the GIL, so threads run in parallel): ~25 rows a second on 2 cores.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click

import csms.cli_station_call  # registers ``stations call``
import csms.cli_station_events  # noqa: F401 - registers ``stations events``
from csms.cli import DATA_DIR, database_for, run_async, stations_group, with_store
from csms.credentials import load_credential_key, password_mac, pending_marker
from csms.passwords import hash_password
from csms.station_import import (
    ExportRow,
    StationEntry,
    StationImportError,
    format_station_csv,
    parse_station_csv,
)
from csms.store.sqlite import DB_NAME, CsmsStore
from csms.timeutil import format_timestamp, utc_now

__all__ = ["stations_group"]

PROGRESS_EVERY_S = 2.0


def hash_passwords(entries: list[StationEntry], *, workers: int) -> list[str]:
    """Every entry's password hashed (production cost), in order, with progress on stderr."""
    total, began, shown = len(entries), time.monotonic(), time.monotonic()
    hashes: list[str] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import-scrypt") as pool:
        for hashed in pool.map(hash_password, (e.password for e in entries)):
            hashes.append(hashed)
            now = time.monotonic()
            if now - shown >= PROGRESS_EVERY_S or len(hashes) == total:
                shown = now
                click.echo(
                    f"hashed {len(hashes)}/{total} passwords ({now - began:.0f} s)", err=True
                )
    return hashes


def pending_hashes(entries: list[StationEntry], key: bytes) -> list[str]:
    """A pending marker for every entry (no scrypt), with progress on stderr."""
    total, began, shown = len(entries), time.monotonic(), time.monotonic()
    markers: list[str] = []
    for _ in entries:
        markers.append(pending_marker(key))
        now = time.monotonic()
        if now - shown >= PROGRESS_EVERY_S or len(markers) == total:
            shown = now
            click.echo(f"prepared {len(markers)}/{total} passwords ({now - began:.0f} s)", err=True)
    return markers


@stations_group.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@DATA_DIR
@click.option(
    "--hash-now",
    is_flag=True,
    help="Hash every password (scrypt, production cost: ~25 rows a second on 2 cores) before"
    " storing, instead of leaving each hash to the CSMS after the station's first connection.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="With --hash-now: threads hashing passwords (default: one per core).",
)
def stations_import(csv_file: Path, data_dir: Path, hash_now: bool, workers: int | None) -> None:
    """Register every station of CSV_FILE (header: station_id,password[,meter_key]
    [,tolerance][,security_profile]); all of them or, at the first bad row, none.

    Each password is stored as its MAC under DATA_DIR/keys/credentials.key and a pending
    hash, which the CSMS makes after the station's first connection (--hash-now: hashed here).
    """
    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{csv_file}: cannot read: {exc}") from None
    base_dir = csv_file.resolve().parent

    async def registered(store: CsmsStore) -> set[str]:
        return {s.station_id for s in await store.list_stations()}

    # a refused import leaves no data dir behind
    exists = database_for(data_dir) is not None or (data_dir / DB_NAME).is_file()
    known = run_async(lambda: with_store(data_dir, registered)) if exists else set()
    try:
        entries = parse_station_csv(text, source=str(csv_file), base_dir=base_dir, registered=known)
    except StationImportError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{csv_file}: {len(entries)} stations checked", err=True)
    began = time.monotonic()
    if hash_now:
        hashes = hash_passwords(entries, workers=workers or os.cpu_count() or 1)

    async def store_all(store: CsmsStore) -> None:
        key = load_credential_key(data_dir)
        stored = hashes if hash_now else pending_hashes(entries, key)
        rows = [
            (e.station_id, h, e.meter_key, e.tolerance, e.security_profile)
            for e, h in zip(entries, stored, strict=True)
        ]
        macs = {
            e.station_id: password_mac(key, e.station_id, h, e.password)
            for e, h in zip(entries, stored, strict=True)
        }
        click.echo(f"storing {len(rows)} stations in one transaction", err=True)
        await store.add_stations(rows, format_timestamp(utc_now()), password_macs=macs)

    run_async(lambda: with_store(data_dir, store_all, create=True))
    took = time.monotonic() - began
    click.echo(f"{len(entries)} stations imported in {took:.1f} s")
    if not hash_now:
        click.echo(
            "their scrypt hashes are pending: the CSMS makes each after the station's first"
            " connection (keep DATA_DIR/keys/credentials.key until then)",
            err=True,
        )


@stations_group.command("export")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write here instead of standard output.",
)
@DATA_DIR
def stations_export(output: Path | None, data_dir: Path) -> None:
    """Write the registry as import CSV, passwords left empty (only hashes and MACs are kept)."""

    async def fetch(store: CsmsStore) -> list[ExportRow]:
        return [
            ExportRow(s.station_id, s.meter_key, s.tolerance, s.security_profile)
            for s in await store.list_stations()
        ]

    text = format_station_csv(run_async(lambda: with_store(data_dir, fetch)))
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"{output}: cannot write: {exc.strerror}") from None
