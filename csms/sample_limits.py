"""How many meter samples the CSMS takes: per message and per transaction (pure).

Two documented limits bound what one station can make the CSMS store and process:

- ``max_sampled_values``: sampled values in one message (MeterValues, TransactionEvent);
- ``max_samples_per_transaction``: samples stored for one transaction;
- ``max_events_per_transaction``: events stored for one transaction (an Ended always is).

Past a limit a ``strict`` station's message is refused with OccurrenceConstraintViolation
naming the limit (nothing of it is stored); a ``tolerant`` station's message is truncated
(the values past the limit are dropped) and the caller logs and counts what was dropped. An
Ended event is never refused: it closes its session. It is counted against the per-transaction
limit with a reserve of ``max_sampled_values`` for its end readings, which it keeps first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from csms.errors import OccurrenceConstraintViolation
from csms.model import MeterSample

END_CONTEXT = "Transaction.End"


@dataclass(frozen=True, slots=True)
class SampleLimit:
    """The per-transaction limit as one station is held to it."""

    max_samples: int
    reserve: int  # more samples an Ended event may add (its end readings)
    tolerant: bool = False
    max_events: int | None = None  # events stored per transaction (an Ended always is)


def check_event_count(limit: SampleLimit, stored: int, transaction_id: str) -> bool:
    """Whether one more Started or Updated event of a transaction holding ``stored`` events
    is kept (config ``max_events_per_transaction``): past it a strict station's event is
    refused with OccurrenceConstraintViolation naming the limit, a tolerant one's is not
    stored (False; the caller logs and counts it)."""
    if limit.max_events is None or stored < limit.max_events:
        return True
    if not limit.tolerant:
        raise OccurrenceConstraintViolation(
            f"transaction {transaction_id} holds {stored} events; the limit"
            f" (max_events_per_transaction) is {limit.max_events}"
        )
    return False


def _count(meter_values: list[Any]) -> int:
    count = 0
    for meter_value in meter_values:
        sampled = meter_value.get("sampledValue") if isinstance(meter_value, dict) else None
        count += len(sampled) if isinstance(sampled, list) else 0
    return count


def limit_sampled_values(meter_values: Any, limit: int, *, tolerant: bool) -> tuple[Any, int]:
    """At most ``limit`` sampled values in one message (config ``max_sampled_values``).

    Counted before anything is parsed or stored. Strict: past the limit the whole message is
    refused, so a station resends it in smaller parts. Tolerant: the first ``limit`` values are
    kept (a ``meterValue`` left with none is dropped). Returns the list to use and how many
    values were dropped.
    """
    if not isinstance(meter_values, list):
        return meter_values, 0
    count = _count(meter_values)
    if count <= limit:
        return meter_values, 0
    if not tolerant:
        raise OccurrenceConstraintViolation(
            f"{count} sampled values in one message; the limit (max_sampled_values) is {limit}"
        )
    kept: list[Any] = []
    room = limit
    for meter_value in meter_values:
        sampled = meter_value.get("sampledValue") if isinstance(meter_value, dict) else None
        if not isinstance(sampled, list):
            kept.append(meter_value)
            continue
        if room > 0:
            kept.append({**meter_value, "sampledValue": sampled[:room]})
            room -= min(room, len(sampled))
    return kept, count - limit


def keep_samples(
    limit: SampleLimit,
    stored: int,
    samples: tuple[MeterSample, ...],
    *,
    ended: bool,
    transaction_id: str,
) -> tuple[tuple[MeterSample, ...], int]:
    """The samples of one event to store when its transaction holds ``stored`` already.

    Returns them and how many were dropped; raises OccurrenceConstraintViolation for a strict
    station's Updated (or Started) that would pass ``max_samples_per_transaction``.
    """
    cap = limit.max_samples + (limit.reserve if ended else 0)
    room = max(0, cap - stored)
    if len(samples) <= room:
        return samples, 0
    if not ended and not limit.tolerant:
        raise OccurrenceConstraintViolation(
            f"transaction {transaction_id} holds {stored} samples; {len(samples)} more would"
            f" pass the limit (max_samples_per_transaction) of {limit.max_samples}"
        )
    if ended:  # the end readings first: they settle the session
        first = [s for s in samples if s.signed is not None or s.context == END_CONTEXT]
        rest = [s for s in samples if not (s.signed is not None or s.context == END_CONTEXT)]
        ordered = first + rest
        keep = set(map(id, ordered[:room]))
        kept = tuple(s for s in samples if id(s) in keep)
    else:
        kept = samples[:room]
    return kept, len(samples) - len(kept)
