"""Sessions and settlements written straight into a store, as months of charging leave them:
many stations, starts that tie, every status, credits, a session stored before progress."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from csms.store.sqlite import CsmsStore
from csms.timeutil import format_timestamp

T0 = datetime(2026, 3, 1, tzinfo=UTC)
STATUSES = ("committed", "committed", "pending", "flagged", "rejected", None, None)  # None: none


def at(seconds: float) -> str:
    return format_timestamp(T0 + timedelta(seconds=seconds))


def station(n: int) -> str:
    return f"CS-{n:03d}"


async def add_sessions(store: CsmsStore, count: int, stations: int, *, first: int = 0) -> None:
    """``count`` sessions over ``stations`` stations (registered here unless already). Every
    third start ties with the one before; each session's settlement status cycles through
    STATUSES (None: active or ended without one); every fifth settled one has a credit."""
    sessions: list[tuple[Any, ...]] = []
    progress: list[tuple[Any, ...]] = []
    settlements: list[tuple[Any, ...]] = []
    for i in range(first, first + count):
        sid, tx = station(i % stations), f"T{i:05d}"
        start = (i - (i % 3 == 2)) * 60  # ties
        status = STATUSES[i % len(STATUSES)]
        state = "active" if status is None and i % 2 else "ended"
        sessions.append(
            (sid, tx, state, 1, at(start), None if state == "active" else at(start + 900),
             1 + i % 2, 1, "TOK", "ISO14443", None, 1, 2, 0, at(start + 901))
        )  # fmt: skip
        if i % 11 != 4:  # the others were stored before progress was kept
            progress.append((sid, tx, 2, 0, "0", 1_000, 3_000 + i, 0, 0, 1_000, 0))
        if status is not None:
            sid_ = f"S{i:05d}"
            settlements.append(
                (sid_, sid, tx, "settlement", status, None, None, f"v1:ev{i % 4}", 2_000 + i,
                 0, 600 + i, "EUR", at(start + 901),
                 at(start + 902.5) if status == "committed" else None)
            )  # fmt: skip
            if i % 5 == 0:
                settlements.append(
                    (f"C{i:05d}", sid, tx, "credit", "pending", "goodwill", sid_, f"v1:ev{i % 4}",
                     None, None, 100, "EUR", at(start + 950), None)
                )  # fmt: skip
    registered = {s.station_id for s in await store.list_stations()}
    new = [(station(n), "h", None, None, None) for n in range(stations)]
    await store.add_stations([s for s in new if s[0] not in registered], at(0))
    async with store.transaction() as db:
        await db.executemany(
            "INSERT INTO sessions (station_id, transaction_id, state, started_seen, started_at,"
            " ended_at, evse_id, connector_id, id_token, id_token_type, stopped_reason,"
            " last_seq_no, event_count, offline_events, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            sessions,
        )
        await db.executemany(
            "INSERT INTO transaction_progress (station_id, transaction_id, samples, dropped,"
            " milli, import_low, import_wh, export_low, export_wh, first_import_wh,"
            " first_export_wh) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            progress,
        )
        await db.executemany(
            "INSERT INTO settlements (settlement_id, station_id, transaction_id, kind, status,"
            " reason, corrects, ev, import_wh, export_wh, amount, currency, created_at,"
            " committed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            settlements,
        )
