"""The reference CSMS: built the ``ocpp`` library's documented default way, for comparison.

A ``websockets`` server whose handler wraps each connection in an ``ocpp.v201.ChargePoint``
subclass with ``@on`` handlers, the library's default schema validation (Draft-4
``jsonschema``, run in the default thread pool) and each TransactionEvent persisted with
aiosqlite the straightforward way: one INSERT and one COMMIT per event. The database uses
the same WAL and ``synchronous=NORMAL`` settings as ours, so durability is equal and the
comparison is about the message path, not about fsync. No authentication (the library's
examples have none), which only favours the reference.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call_result
from ocpp.v201.enums import Action, RegistrationStatusEnumType
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.typing import Subprotocol

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS transaction_events (id INTEGER PRIMARY KEY,"
    " station_id TEXT, transaction_id TEXT, seq_no INTEGER, event_type TEXT,"
    " timestamp TEXT, raw TEXT)"
)


def now_text() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class ReferenceChargePoint(ChargePoint):
    """One station's connection, handled the library's way."""

    def __init__(self, station_id: str, connection: Any, db: aiosqlite.Connection) -> None:
        super().__init__(station_id, connection)
        self.db = db

    @on(Action.boot_notification)
    async def on_boot_notification(self, **_: Any) -> call_result.BootNotification:
        return call_result.BootNotification(
            current_time=now_text(),
            interval=300,
            status=RegistrationStatusEnumType.accepted,
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=now_text())

    @on(Action.status_notification)
    async def on_status_notification(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.transaction_event)
    async def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        **rest: Any,
    ) -> call_result.TransactionEvent:
        raw = json.dumps({"eventType": event_type, "seqNo": seq_no, **rest}, default=str)
        await self.db.execute(
            "INSERT INTO transaction_events (station_id, transaction_id, seq_no, event_type,"
            " timestamp, raw) VALUES (?, ?, ?, ?, ?, ?)",
            (self.id, transaction_info["transaction_id"], seq_no, event_type, timestamp, raw),
        )
        await self.db.commit()
        return call_result.TransactionEvent()


async def start_reference(db_path: Path, host: str, port: int) -> tuple[Server, Any]:
    """Open the database and start serving; returns the server and the database to close."""
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    db = await aiosqlite.connect(str(db_path))
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute(SCHEMA)
    await db.commit()

    async def handler(websocket: ServerConnection) -> None:
        path = websocket.request.path if websocket.request else "/"
        station_id = path.rstrip("/").split("/")[-1]
        charge_point = ReferenceChargePoint(station_id, websocket, db)
        try:
            await charge_point.start()
        except Exception:  # a closed connection ends the library's loop with an exception
            return

    server = await serve(
        handler,
        host,
        port,
        subprotocols=[Subprotocol("ocpp2.0.1")],
        compression=None,
    )
    return server, db


async def _smoke(db_path: Path) -> None:  # pragma: no cover - manual check
    server, db = await start_reference(db_path, "127.0.0.1", 0)
    server.close()
    await server.wait_closed()
    await db.close()


if __name__ == "__main__":  # pragma: no cover
    asyncio.run(_smoke(Path("/tmp/reference.sqlite")))
