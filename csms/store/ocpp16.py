"""OCPP 1.6 bookkeeping beside the session model: CSMS-assigned ids and event sequence numbers.

OCPP 1.6 has no TransactionEvent: the CSMS assigns an integer ``transactionId`` when it answers
StartTransaction, and MeterValues/StopTransaction carry no sequence number. This store keeps
both so that 1.6 messages become ``TransactionEventRecord``s with stable seqNos, and a message
a station resends (after a lost answer or a reconnect) maps to the same id and seqNo again:
the session model's idempotence on (station, transactionId, seqNo) then does the rest.

Every method is a single statement or an idempotent pair, so a crash between two of them
leaves nothing a resend cannot complete.
"""

from __future__ import annotations

from dataclasses import dataclass

from csms.sample_limits import SampleLimit, check_event_count
from csms.store.events import EVENT_COUNT
from csms.store.sqlite import CsmsStore

START_KEY = "start"
STOP_KEY = "stop"

# Token types looked up for a 1.6 idTag (1.6 has no type): RFID first, then the rest.
_TYPE_ORDER = ("ISO14443", "ISO15693", "Central", "eMAID", "KeyCode", "Local", "MacAddress")


@dataclass(frozen=True, slots=True)
class Ocpp16Transaction:
    """A transaction as StartTransaction opened it (``started_at`` is the station's text)."""

    transaction_id: int
    station_id: str
    connector_id: int
    id_tag: str
    meter_start: int
    started_at: str
    reservation_id: int | None
    created_at: str


class Ocpp16Store:
    """1.6 tables on the CSMS's one writer connection (STYLE.md rule 9)."""

    def __init__(self, store: CsmsStore) -> None:
        self._store = store

    async def start_transaction(
        self,
        station_id: str,
        *,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        started_at: str,
        reservation_id: int | None,
        created_at: str,
    ) -> tuple[int, bool]:
        """The transactionId for a StartTransaction, and whether it is new.

        A resent StartTransaction (same station, connector, idTag, timestamp and meterStart)
        gets the id it was given the first time.
        """
        rowcount = await self._store.execute_write(
            "INSERT INTO ocpp16_transactions (station_id, connector_id, id_tag, meter_start,"
            " started_at, reservation_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (station_id, connector_id, id_tag, started_at, meter_start) DO NOTHING",
            (station_id, connector_id, id_tag, meter_start, started_at, reservation_id, created_at),
        )
        is_new = rowcount > 0
        row = await self._store.fetchone(
            "SELECT transaction_id FROM ocpp16_transactions WHERE station_id = ?"
            " AND connector_id = ? AND id_tag = ? AND started_at = ? AND meter_start = ?",
            (station_id, connector_id, id_tag, started_at, meter_start),
        )
        assert row is not None, "the row was just inserted or already there"
        return int(row[0]), is_new

    async def get_transaction(
        self, station_id: str, transaction_id: int
    ) -> Ocpp16Transaction | None:
        row = await self._store.fetchone(
            "SELECT * FROM ocpp16_transactions WHERE station_id = ? AND transaction_id = ?",
            (station_id, transaction_id),
        )
        return Ocpp16Transaction(**dict(row)) if row else None

    async def active_transaction(
        self, station_id: str, connector_id: int
    ) -> Ocpp16Transaction | None:
        """The newest transaction on a connector that has no StopTransaction yet."""
        row = await self._store.fetchone(
            "SELECT t.* FROM ocpp16_transactions t WHERE t.station_id = ? AND t.connector_id = ?"
            " AND NOT EXISTS (SELECT 1 FROM ocpp16_event_keys k WHERE k.station_id = t.station_id"
            " AND k.transaction_id = t.transaction_id AND k.event_key = ?)"
            " ORDER BY t.transaction_id DESC LIMIT 1",
            (station_id, connector_id, STOP_KEY),
        )
        return Ocpp16Transaction(**dict(row)) if row else None

    async def event_allowed(
        self, station_id: str, transaction_id: int, event_key: str, limit: SampleLimit
    ) -> bool:
        """Whether a message with ``event_key`` may become one more event of the transaction
        (``csms.sample_limits.check_event_count``; a key already seen always may). Raises
        OccurrenceConstraintViolation for a strict station past the limit."""
        row = await self._store.fetchone(EVENT_COUNT, (station_id, str(transaction_id)))
        held = int(row[0]) if row else 0
        if limit.max_events is None or held < limit.max_events:
            return True
        seen = await self._store.fetchone(
            "SELECT 1 FROM ocpp16_event_keys WHERE station_id = ? AND transaction_id = ?"
            " AND event_key = ?",
            (station_id, transaction_id, event_key),
        )
        return seen is not None or check_event_count(limit, held, str(transaction_id))

    async def sequence_number(
        self, station_id: str, transaction_id: int, event_key: str
    ) -> tuple[int, bool]:
        """The seqNo for one message of a transaction, and whether the key is new.

        ``START_KEY`` is always seqNo 0; any other key gets the next free number the first
        time it is seen and the same number on every resend.
        """
        if event_key == START_KEY:
            rowcount = await self._store.execute_write(
                "INSERT INTO ocpp16_event_keys (station_id, transaction_id, event_key,"
                " seq_no) VALUES (?, ?, ?, 0) ON CONFLICT DO NOTHING",
                (station_id, transaction_id, event_key),
            )
        else:
            rowcount = await self._store.execute_write(
                "INSERT INTO ocpp16_event_keys (station_id, transaction_id, event_key,"
                " seq_no) VALUES (?, ?, ?, (SELECT COALESCE(MAX(seq_no), 0) + 1"
                " FROM ocpp16_event_keys WHERE station_id = ? AND transaction_id = ?))"
                " ON CONFLICT DO NOTHING",
                (station_id, transaction_id, event_key, station_id, transaction_id),
            )
        is_new = rowcount > 0
        row = await self._store.fetchone(
            "SELECT seq_no FROM ocpp16_event_keys WHERE station_id = ? AND transaction_id = ?"
            " AND event_key = ?",
            (station_id, transaction_id, event_key),
        )
        assert row is not None, "the key was just inserted or already there"
        return int(row[0]), is_new

    async def is_stopped(self, station_id: str, transaction_id: int) -> bool:
        row = await self._store.fetchone(
            "SELECT 1 FROM ocpp16_event_keys WHERE station_id = ? AND transaction_id = ?"
            " AND event_key = ?",
            (station_id, transaction_id, STOP_KEY),
        )
        return row is not None

    async def token_type(self, id_tag: str) -> str | None:
        """The registered type of a 1.6 idTag (which carries none), or None if unknown."""
        rows = await self._store.fetchall(
            "SELECT type FROM id_tokens WHERE id_token = ?", (id_tag,)
        )
        types = {row[0] for row in rows}
        for token_type in _TYPE_ORDER:
            if token_type in types:
                return token_type
        return min(types) if types else None
