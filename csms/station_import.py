"""Station registry files: the rules a registration must pass, and its CSV import/export form.

One row per station: ``station_id,password`` and, optionally, ``meter_key`` (a key file's
path, relative to the CSV file, or the key inline as PEM or ``oca:base16:asn1:<hex>``),
``tolerance`` (``strict``/``tolerant``) and ``security_profile`` (``1``/``2``/``3``; empty or
``default``: the CSMS's own). The whole file is checked before anything is stored, and the
first bad row stops the import, named by its line. An export has the same columns with the
password left empty (only hashes and MACs are stored).

Pure: reads the meter key files it names, nothing else; hashing and storing are the caller's.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from csms.errors import CsmsError
from csms.evidence import MeterKeyError, public_key_pem, read_meter_public_key

MAX_STATION_ID = 48
# OCPP's identifierString (a-z A-Z 0-9 * - _ = : + | @ .) without ':', which HTTP Basic
# cannot carry in a user name and which separates STATION:TRANSACTION in the review ids
STATION_ID_CHARS = "a-z, A-Z, 0-9 and * - _ = + | @ ."
_STATION_ID = re.compile(r"[A-Za-z0-9*\-_=+|@.]+")
MIN_PASSWORD = 8
TOLERANCES = ("strict", "tolerant")
PROFILES = ("1", "2", "3")

REQUIRED = ("station_id", "password")
OPTIONAL = ("meter_key", "tolerance", "security_profile")
COLUMNS = REQUIRED + OPTIONAL


class StationImportError(CsmsError):
    """A registry file that cannot be imported; the message names the line and why."""


class _RowError(Exception):
    """What is wrong with one row (the caller adds the line)."""


def valid_station_id(station_id: str) -> bool:
    """A station id that can be registered: 1 to 48 of the characters in STATION_ID_CHARS."""
    return 0 < len(station_id) <= MAX_STATION_ID and _STATION_ID.fullmatch(station_id) is not None


def station_id_problem(station_id: str) -> str | None:
    if valid_station_id(station_id):
        return None
    return (
        f"station id {station_id!r} must be 1 to {MAX_STATION_ID} characters of"
        f" {STATION_ID_CHARS} (OCPP identifierString without ':')"
    )


def password_problem(password: str) -> str | None:
    return None if len(password) >= MIN_PASSWORD else f"at least {MIN_PASSWORD} characters"


@dataclass(frozen=True, slots=True)
class StationEntry:
    """One checked row: what to register (the password still in clear, to be hashed)."""

    line: int
    station_id: str
    password: str
    meter_key: str | None  # PEM
    tolerance: str | None
    security_profile: int | None


@dataclass(frozen=True, slots=True)
class ExportRow:
    station_id: str
    meter_key: str | None
    tolerance: str
    security_profile: int | None


def meter_key_from_cell(value: str, base_dir: Path) -> str:
    """The PEM to store for a ``meter_key`` cell: inline key text, or a file's path."""
    text = value.strip()
    if text.startswith(("-----", "oca:")):
        key = read_meter_public_key(text.encode("ascii", "replace"), "inline meter_key")
    else:
        path = base_dir / text
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise MeterKeyError(f"{path}: cannot read meter key: {exc.strerror}") from None
        key = read_meter_public_key(data, str(path))
    return public_key_pem(key)


def parse_station_csv(
    text: str, *, source: str, base_dir: Path, registered: Iterable[str] = ()
) -> list[StationEntry]:
    """Every row of a registry CSV, checked; StationImportError at the first bad one."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)

    def fail(line: int, reason: str) -> StationImportError:
        return StationImportError(f"{source}: line {line}: {reason}; nothing was imported")

    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise fail(1, f"not CSV ({exc})") from None
    if header is None:
        raise fail(1, f"empty file; the header row must be {','.join(REQUIRED)}[,...]")
    header = [h.strip() for h in header]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise fail(1, f"unknown column {unknown[0]!r} (columns: {', '.join(COLUMNS)})")
    missing = [h for h in REQUIRED if h not in header]
    if missing:
        raise fail(1, f"missing column {missing[0]!r} (the header must name {', '.join(REQUIRED)})")
    if len(set(header)) != len(header):
        raise fail(1, "a column is named twice")
    taken = set(registered)
    seen: dict[str, int] = {}
    entries: list[StationEntry] = []
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader, None)
        except csv.Error as exc:
            raise fail(line, f"not CSV ({exc})") from None
        if row is None:
            break
        if row and any(cell.strip() for cell in row):
            try:
                entries.append(_entry(row, header, line, base_dir, taken, seen))
            except _RowError as exc:
                raise fail(line, str(exc)) from None
        line = reader.line_num + 1
    if not entries:
        raise fail(line, "no stations in the file")
    return entries


def _entry(
    row: list[str],
    header: list[str],
    line: int,
    base_dir: Path,
    taken: set[str],
    seen: dict[str, int],
) -> StationEntry:
    fail = _RowError
    if len(row) > len(header):
        raise fail(f"{len(row)} fields, the header has {len(header)}")
    cells = dict(zip(header, row + [""] * (len(header) - len(row)), strict=True))
    station_id = cells["station_id"]
    problem = station_id_problem(station_id)
    if problem:
        raise fail(problem)
    if station_id in seen:
        raise fail(f"station {station_id!r} is also on line {seen[station_id]}")
    if station_id in taken:
        raise fail(f"station {station_id!r} is already registered")
    seen[station_id] = line
    password = cells["password"]
    if not password:
        raise fail("password is empty (an export carries no passwords: fill them in)")
    problem = password_problem(password)
    if problem:
        raise fail(f"password: {problem}")
    meter_key = None
    if cells.get("meter_key", "").strip():
        try:
            meter_key = meter_key_from_cell(cells["meter_key"], base_dir)
        except MeterKeyError as exc:
            raise fail(f"meter_key: {exc}") from None
    tolerance = cells.get("tolerance", "").strip() or None
    if tolerance is not None and tolerance not in TOLERANCES:
        raise fail(f"tolerance must be strict or tolerant, not {tolerance!r}")
    profile_text = cells.get("security_profile", "").strip()
    if profile_text not in ("", "default", *PROFILES):
        raise fail(f"security_profile must be 1, 2, 3 or default, not {profile_text!r}")
    profile = int(profile_text) if profile_text in PROFILES else None
    return StationEntry(line, station_id, password, meter_key, tolerance, profile)


def format_station_csv(rows: Iterable[ExportRow]) -> str:
    """The registry as import CSV, with every password left empty."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        profile = "" if r.security_profile is None else str(r.security_profile)
        writer.writerow([r.station_id, "", r.meter_key or "", r.tolerance, profile])
    return out.getvalue()
