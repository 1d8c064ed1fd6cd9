"""The EV behind the signing meter: Intermediate records at aligned instants, a fresh EV per
session, nothing flowing between sessions."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.ev import Ev, EvSpec
from chargepoint.ev_meter import EvMeter
from chargepoint.meter import Meter, MeterInfo, public_key_ocmf
from chargepoint.metering import MeterReading, MeterRequest, ReadingContext, SignedMeterValue

T0 = datetime(2026, 11, 25, 10, 7, tzinfo=UTC)  # not on any aligned instant
KEY = ec.generate_private_key(ec.SECP256R1())


def spec(at: datetime = T0, **overrides: Any) -> EvSpec:
    values: dict[str, Any] = dict(
        capacity_wh=60_000,
        reserve_soc_pct=20,
        max_charge_w=11_000,
        max_discharge_w=7_000,
        departure=at + timedelta(hours=12),
        target_soc_pct=50,
    )
    values.update(overrides)
    return EvSpec(**values)


def make(**kwargs: Any) -> EvMeter:
    return EvMeter(
        Ev(spec(), soc_pct=50, at=T0),
        Meter(KEY, MeterInfo(serial="M1")),
        public_key=public_key_ocmf(KEY),
        token_type="ISO14443",
        **kwargs,
    )


def read(
    source: EvMeter, at: datetime, context: ReadingContext, interval: int = 900
) -> MeterReading:
    return source.read(MeterRequest(at, context, "tx-1", "TOKEN1", aligned_interval_s=interval))


def payload(value: SignedMeterValue | None) -> dict[str, Any]:
    """Verify the record's signature with the public key and return its payload."""
    assert value is not None
    text = base64.b64decode(value.signed_meter_data).decode()
    body, signature = text[len("OCMF|") :].rsplit("|", 1)
    der = bytes.fromhex(json.loads(signature)["SD"])
    KEY.public_key().verify(der, body.encode(), ec.ECDSA(hashes.SHA256()))
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def wh(value: float) -> int:
    return round(value * 1000)


def test_clock_reading_carries_the_record_signed_at_the_aligned_instant() -> None:
    source = make()
    read(source, T0, ReadingContext.TRANSACTION_BEGIN)
    source.set_limit(11_000, T0)
    boundary = datetime(2026, 11, 25, 10, 15, tzinfo=UTC)
    # a profile arrives a little after the instant, before the station's clock tick
    source.set_limit(-7_000, boundary + timedelta(seconds=20))
    tick = read(source, boundary, ReadingContext.SAMPLE_CLOCK)
    record = payload(tick.signed)
    assert record["RD"][0]["TX"] == "C"
    assert record["RD"][0]["TM"] == "2026-11-25T10:15:00,000+0000 S"
    # 8 min at 11 kW = 1466.67 Wh: the record and the reading both hold the value at 10:15
    assert wh(record["RD"][0]["RV"]) == 1466 == tick.import_wh
    assert tick.export_wh == 0 and tick.power_w == 11_000
    assert source.unsent() == []


def test_every_aligned_instant_of_a_transaction_is_signed_and_none_outside() -> None:
    source = make()
    read(source, T0 - timedelta(minutes=40), ReadingContext.SAMPLE_PERIODIC)  # before: nothing
    assert source.unsent() == []
    read(source, T0, ReadingContext.TRANSACTION_BEGIN)
    end = T0 + timedelta(hours=1, minutes=8)  # 11:15, an aligned instant itself
    read(source, end - timedelta(minutes=1), ReadingContext.SAMPLE_PERIODIC)
    final = read(source, end, ReadingContext.TRANSACTION_END)
    held = source.unsent()
    assert [h.at.strftime("%H:%M") for h in held] == ["10:15", "10:30", "10:45", "11:00"]
    assert payload(final.signed)["RD"][0]["TX"] == "E"  # 11:15 is the End, not an Intermediate
    pages = [payload(h.reading.signed)["PG"] for h in held]
    assert pages == ["T2", "T3", "T4", "T5"]
    read(source, end + timedelta(hours=1), ReadingContext.SAMPLE_PERIODIC)
    assert source.unsent() == []  # no transaction, no Intermediate


def test_records_before_a_given_instant_are_handed_over_once_oldest_first() -> None:
    source = make()
    read(source, T0, ReadingContext.TRANSACTION_BEGIN)
    read(source, T0 + timedelta(minutes=40), ReadingContext.SAMPLE_PERIODIC)  # 10:15, 10:30, 10:45
    first = source.unsent(before=datetime(2026, 11, 25, 10, 30, tzinfo=UTC))
    assert [h.at.minute for h in first] == [15]
    assert [h.at.minute for h in source.unsent()] == [30, 45]


def test_a_fresh_ev_per_session_and_no_flow_between_sessions() -> None:
    made: list[Ev] = []

    def new_ev(at: datetime) -> Ev:
        ev = Ev(spec(at, max_charge_w=7_000 + 1_000 * len(made)), soc_pct=30, at=at)
        made.append(ev)
        return ev

    source = make(new_ev=new_ev)
    read(source, T0, ReadingContext.TRANSACTION_BEGIN, interval=0)
    end1 = read(source, T0 + timedelta(hours=1), ReadingContext.TRANSACTION_END, interval=0)
    assert end1.import_wh == 7_000  # the first EV at its own maximum, 7 kW
    idle = read(source, T0 + timedelta(hours=3), ReadingContext.SAMPLE_PERIODIC, interval=0)
    assert (idle.import_wh, idle.power_w) == (7_000, 0)  # unplugged: nothing flows
    begin2 = read(source, T0 + timedelta(hours=3), ReadingContext.TRANSACTION_BEGIN, interval=0)
    assert begin2.soc == 30 and source.ev is made[1]
    end2 = read(source, T0 + timedelta(hours=4), ReadingContext.TRANSACTION_END, interval=0)
    assert end2.import_wh == 7_000 + 8_000  # the second EV: a new battery, 8 kW


def test_a_limit_given_for_a_moment_already_metered_applies_from_the_last_step() -> None:
    source = make()
    read(source, T0 + timedelta(minutes=30), ReadingContext.TRANSACTION_BEGIN, interval=0)
    source.set_limit(-7_000, T0 + timedelta(minutes=10))  # late news: no error, applies now
    later = read(source, T0 + timedelta(minutes=90), ReadingContext.SAMPLE_PERIODIC, interval=0)
    assert later.export_wh == 7_000
    source.set_limit(None, T0 + timedelta(minutes=90))  # no profile: the EV's own maximum
    assert source.power_w == 11_000
