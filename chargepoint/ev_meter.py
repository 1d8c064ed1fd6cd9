"""An EV behind a signing meter: one EVSE's ``MeterSource`` for V2G sessions.

The EV (``chargepoint.ev``) moves energy, the meter (``chargepoint.meter``) counts and signs
it. Records: Begin on ``Transaction.Begin``, End on ``Transaction.End``, and an Intermediate
at every clock-aligned instant (the interval each request carries) and every explicit
boundary the clock passes while a transaction runs. The EV is integrated exactly up to the
instant, signed there, then on to ``now``, so a late wake-up never shifts a signed reading.

An Intermediate record is held with the values read at its instant: a ``Sample.Clock``
reading carries the oldest one due, and :meth:`EvMeter.unsent` hands over the rest, so the
station can send every record. With ``new_ev`` each transaction gets a fresh EV; between
transactions no energy flows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from chargepoint.clock import next_aligned
from chargepoint.ev import Ev, flowing_w
from chargepoint.meter import Identification, Meter, OcmfRecord, signed_meter_value
from chargepoint.metering import (
    HeldReading,
    MeterReading,
    MeterRequest,
    ReadingContext,
    SignedMeterValue,
)

EvFactory = Callable[[datetime], Ev]


@dataclass(frozen=True, slots=True)
class _Held:
    at: datetime
    record: OcmfRecord
    reading: MeterReading  # the values at ``at``, unsigned


class EvMeter:
    """An EV behind a signing meter (see the module docstring)."""

    def __init__(
        self,
        ev: Ev,
        meter: Meter,
        *,
        public_key: str,
        evse_id: str = "",
        token_type: str = "",
        boundaries: Sequence[datetime] = (),
        aligned_interval_s: int = 0,
        new_ev: EvFactory | None = None,
    ) -> None:
        self.ev = ev
        self.meter = meter
        self.public_key = public_key
        self.evse_id = evse_id
        self.token_type = token_type
        self.aligned_interval_s = aligned_interval_s
        self._new_ev = new_ev
        self._boundaries = sorted(boundaries)
        self._who: Identification | None = None
        self._held: deque[_Held] = deque()
        self._limits: deque[tuple[datetime, int]] = deque()  # changes not yet integrated

    @property
    def in_transaction(self) -> bool:
        """True between a Begin and an End record."""
        return self._who is not None

    @property
    def power_w(self) -> int:
        """The power flowing under the latest limit (> 0 charging, < 0 discharging)."""
        if not self._limits:
            return self.ev.power_w
        return flowing_w(self.ev.spec, replace(self.ev.state, requested_w=self._limits[-1][1]))

    def departure(self) -> datetime | None:
        """When the EV that arrived for the running transaction leaves (None between
        transactions, and without ``new_ev``: an EV that did not arrive with it)."""
        if self._who is None or self._new_ev is None:
            return None
        return self.ev.spec.departure

    def set_limit(self, limit_w: int | None, now: datetime) -> None:
        """Apply a charging-profile limit (W; < 0 discharges) from ``now`` on.

        ``None`` means no profile applies: the EV charges at its own maximum. A ``now``
        before the EV's last step (a reading just taken) applies from that step. The change
        is integrated when a reading reaches ``now``: a reading asked for an earlier instant
        afterwards (a sample due before the change came in) still sees the old limit, so
        readings depend on station time alone, not on the order the work was done in.
        """
        limit = self.ev.spec.max_charge_w if limit_w is None else limit_w
        if not self._limits and now <= self.ev.state.at:  # nothing to integrate first
            self.ev.set_limit(limit, self.ev.state.at)
            return
        now = max(now, self.ev.state.at, self._limits[-1][0] if self._limits else now)
        self._limits.append((now, limit))

    def set_boundaries(self, boundaries: Sequence[datetime]) -> None:
        """Explicit boundaries (e.g. tariff changes) at which Intermediate records are due."""
        self._boundaries = sorted(boundaries)

    def read(self, request: MeterRequest) -> MeterReading:
        self.aligned_interval_s = request.aligned_interval_s
        now = max(request.now, self.ev.state.at)
        if request.context is ReadingContext.TRANSACTION_BEGIN:
            self._advance(now)
            if self._new_ev is not None:
                self._limits.clear()  # what was asked of the EV that left does not carry over
                self.ev = self._new_ev(now)
                self.ev.set_limit(self.ev.spec.max_charge_w, now)
            token_type = request.id_token_type or self.token_type
            self._who = Identification(request.id_token or "", token_type, self.evse_id)
            return self._reading(self.meter.sign("Begin", now, self._who))
        if request.context is ReadingContext.TRANSACTION_END and self._who is not None:
            self._advance(now, inclusive=False)  # an instant equal to the End is the End
            reading = self._reading(self.meter.sign("End", now, self._who))
            self._who = None
            self._limits.clear()
            self.ev.set_limit(0, now)  # unplugged: nothing flows until the next Begin
            return reading
        self._advance(now)
        clock = request.context is ReadingContext.SAMPLE_CLOCK
        if clock and self._held and self._held[0].at <= now:
            held = self._held.popleft()
            return replace(held.reading, signed=self._signed(held.record))
        return self._reading(None)

    def unsent(self, before: datetime | None = None) -> list[HeldReading]:
        """Intermediate readings signed (before ``before``, if given) but not yet carried by a
        reading, oldest first; each is handed over once."""
        out: list[HeldReading] = []
        while self._held and (before is None or self._held[0].at < before):
            held = self._held.popleft()
            signed = self._signed(held.record)
            out.append(HeldReading(held.at, replace(held.reading, signed=signed)))
        return out

    def _next_boundary(self) -> datetime | None:
        after = self.ev.state.at
        while self._boundaries and self._boundaries[0] <= after:
            self._boundaries.pop(0)
        candidates = [self._boundaries[0]] if self._boundaries else []
        aligned = next_aligned(after, self.aligned_interval_s)
        if aligned is not None:
            candidates.append(aligned)
        return min(candidates) if candidates else None

    def _advance(self, now: datetime, *, inclusive: bool = True) -> None:
        """Integrate the EV up to ``now``, applying limit changes at their instants and
        signing an Intermediate record at every boundary passed."""
        while self._limits and self._limits[0][0] <= now:
            at, limit_w = self._limits.popleft()
            self._advance_to(at, inclusive=True)
            self.ev.set_limit(limit_w, max(at, self.ev.state.at))
        self._advance_to(now, inclusive=inclusive)

    def _advance_to(self, now: datetime, *, inclusive: bool) -> None:
        # outside a transaction nothing is signed, so the EV goes straight to ``now``
        while (
            self._who is not None
            and (boundary := self._next_boundary()) is not None
            and (boundary < now or (inclusive and boundary == now))
        ):
            self.meter.feed(self.ev.advance(boundary))
            record = self.meter.sign("Intermediate", boundary, self._who)
            self._held.append(_Held(boundary, record, self._reading(None)))
        if now > self.ev.state.at:
            self.meter.feed(self.ev.advance(now))

    def _reading(self, record: OcmfRecord | None) -> MeterReading:
        return MeterReading(
            import_wh=self.meter.import_wh,
            export_wh=self.meter.export_wh,
            power_w=self.ev.power_w,
            soc=int(self.ev.soc_pct),
            signed=None if record is None else self._signed(record),
        )

    def _signed(self, record: OcmfRecord) -> SignedMeterValue:
        value = signed_meter_value(record, self.public_key)
        return SignedMeterValue(
            signed_meter_data=value["signedMeterData"],
            signing_method=value["signingMethod"],
            encoding_method=value["encodingMethod"],
            public_key=value["publicKey"],
        )
