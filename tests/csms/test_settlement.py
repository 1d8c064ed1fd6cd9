"""Settlement: a 4-hour bidirectional session through EV + meter + evidence + settlement,
checked against an independent computation from the OCMF records themselves."""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from chargepoint.ev import Ev, EvSpec
from chargepoint.meter import (
    Identification,
    Meter,
    MeterInfo,
    public_key_ocmf,
    signed_meter_value,
)
from csms.dispatch import DispatchPolicy, decide, set_charging_profile_request
from csms.evidence import EvidenceCheck, MeterSnapshot, check_evidence, parse_public_key
from csms.identity import (
    PseudonymKey,
    ev_pseudonym,
    issue_temporary_id,
    personal_data,
    registered_token,
)
from csms.settlement import (
    SessionFacts,
    SettlementError,
    build_settlement,
    interval_energy,
    running_cost,
    settlement_id_for,
    sign_settlement,
    total_cost,
)
from csms.tariffs import parse_tariff
from ledger.keys import generate_key, public_bytes
from ledger.schema import check_settlement
from ledger.validation import check_signature

# Berlin local time: 07:00 day, 17:00 peak (export pays well), 18:00 evening, 21:00 night.
TARIFF_YAML = b"""\
id: tou-v2g
currency: EUR
timezone: Europe/Berlin
daily:
  - {start: "07:00", import_price: 300000, export_price: 90000}
  - {start: "17:00", import_price: 380000, export_price: 450000}
  - {start: "18:00", import_price: 333333, export_price: 120000}
  - {start: "21:00", import_price: 220000, export_price: 60000}
"""
# The same prices written independently, by UTC hour (Berlin is UTC+1 in November).
PRICE_BY_UTC_HOUR = {14: (300000, 90000), 15: (300000, 90000), 16: (380000, 450000)}
PRICE_BY_UTC_HOUR |= {17: (333333, 120000)}

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)  # 15:00 in Berlin
CHAIN = "v2g-test"
TOKEN = "04A2B3C4D5E6F7"
PKEY = PseudonymKey(version=1, key=b"operator-pseudonym-key-32-bytes!")


def run_session(token: str = TOKEN) -> tuple[list[str], list[dict[str, str]], Ev, Meter]:
    """Drive EV and meter minute by minute for 4 h, dispatching on the export price."""
    tariff = parse_tariff(TARIFF_YAML, source="tou.yaml")
    key = ec.generate_private_key(ec.SECP256R1())
    spec = EvSpec(
        capacity_wh=80_000,
        reserve_soc_pct=30,
        max_charge_w=11_000,
        max_discharge_w=7_000,
        departure=T0 + timedelta(hours=8),
        target_soc_pct=70,
    )
    ev = Ev(spec, soc_pct=40, at=T0)
    meter = Meter(key, MeterInfo(serial="MTR-7"), import_wh=4_321_987, export_wh=123_456)
    who = Identification(id_token=token, token_type="ISO14443", evse_id="DE*V2G*E7*1")
    policy = DispatchPolicy(export_threshold=300_000, charge_w=11_000, discharge_w=7_000)
    end = T0 + timedelta(hours=4)
    boundaries = set(tariff.boundaries(T0, end))
    records = [meter.sign("Begin", T0, who)]
    now = T0
    while now < end:
        decision = decide(
            policy,
            export_price=tariff.price_at(now).export_price,
            soc_pct=ev.soc_pct,
            reserve_soc_pct=spec.reserve_soc_pct,
        )
        request = set_charging_profile_request(
            decision, evse_id=1, transaction_id="tx-1", profile_id=1, start=now
        )
        limit = request["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]
        meter.feed(ev.set_limit(limit["limit"], now))
        now += timedelta(minutes=1)
        meter.feed(ev.advance(now))
        if now in boundaries:
            records.append(meter.sign("Intermediate", now, who))
    records.append(meter.sign("End", end, who))
    carried = [signed_meter_value(r, public_key_ocmf(key)) for r in records]
    texts = [base64.b64decode(c["signedMeterData"]).decode() for c in carried]
    return texts, carried, ev, meter


def independent_amount(texts: list[str]) -> tuple[int, int, int]:
    """Parse the OCMF payloads with json, take register deltas, price them with Decimal."""
    readings = []
    for text in texts:
        payload = json.loads(text[len("OCMF|") :].rsplit("|", 1)[0], parse_float=Decimal)
        rd = {r["RI"]: Decimal(r["RV"]) * 1000 for r in payload["RD"]}
        hour = int(payload["RD"][0]["TM"][11:13])
        readings.append((hour, rd["01-00:B2.08.00*FF"], rd["01-00:C2.08.00*FF"]))
    total = Decimal(0)
    imported = exported = Decimal(0)
    for (hour, imp_a, exp_a), (_, imp_b, exp_b) in itertools.pairwise(readings):
        import_price, export_price = PRICE_BY_UTC_HOUR[hour]
        total += (imp_b - imp_a) * import_price - (exp_b - exp_a) * export_price
        imported += imp_b - imp_a
        exported += exp_b - exp_a
    amount = (total / 1000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return int(amount), int(imported), int(exported)


def facts(ev: str = "v1:" + "ab" * 32, payment: str = "invoice") -> SessionFacts:
    return SessionFacts(
        settlement_id=settlement_id_for("op-1", "DE*V2G*E7*1", "tx-1"),
        transaction_id="tx-1",
        operator="op-1",
        evse_id="DE*V2G*E7*1",
        ev=ev,
        payment=payment,  # type: ignore[arg-type]
    )


def test_bidirectional_session_settles_like_an_independent_computation() -> None:
    texts, carried, ev, _ = run_session()
    key = parse_public_key(base64.b64decode(carried[0]["publicKey"]))
    check = check_evidence(
        texts, key, expected_id=TOKEN, carried_keys=[c["publicKey"] for c in carried]
    )
    assert check.ok, check.reason
    assert [s.nature for s in check.snapshots] == ["Begin", "Intermediate", "Intermediate", "End"]
    tariff = parse_tariff(TARIFF_YAML, source="tou.yaml")
    body = build_settlement(check, tariff, facts())

    amount, imported, exported = independent_amount(texts)
    assert body["amount"] == amount
    assert body["energy"] == {"import_wh": imported, "export_wh": exported}
    # physics: 2 h at 11 kW, then 1 h at -7 kW (peak export), then 1 h at 11 kW
    assert (imported, exported) == (33_000, 7_000)
    assert ev.stored_wh == 32_000 + 33_000 - 7_000
    assert [i["start"] for i in body["intervals"]] == [
        "2026-11-25T14:00:00.000Z",
        "2026-11-25T16:00:00.000Z",
        "2026-11-25T17:00:00.000Z",
    ]
    assert [(i["import_wh"], i["export_wh"]) for i in body["intervals"]] == [
        (22_000, 0),
        (0, 7_000),
        (11_000, 0),
    ]
    assert amount == round((22_000 * 300000 - 7_000 * 450000 + 11_000 * 333333) / 1000)
    assert body["evidence"]["records"] == [
        {"nature": r.nature, "sha256": r.sha256} for r in check.records
    ]

    csms_key = generate_key()
    tx = sign_settlement(body, csms_key, CHAIN)
    record = json.loads(tx.data)
    check_settlement(record)  # exactly the ledger's schema
    check_signature(record, public_bytes(csms_key), CHAIN)
    assert b"." not in json.dumps(record["amount"]).encode()  # integers only


def test_no_token_vin_phone_or_payment_reference_in_settlement_bytes() -> None:
    vin, phone, reference = "WVWZZZ1JZXW000001", "+4915112345678", "DE89370400440532013000"
    person = personal_data(vin=vin, phone=phone, payment_reference=reference)
    temp = issue_temporary_id(person, payment="invoice", now=T0, ttl=timedelta(hours=6))
    texts, carried, _, _ = run_session(token=temp.id_token)
    key = parse_public_key(carried[0]["publicKey"])
    check = check_evidence(texts, key, expected_id=temp.id_token)
    assert check.ok, check.reason
    assert any(temp.id_token in t for t in texts)  # the raw records do carry the token...
    tariff = parse_tariff(TARIFF_YAML, source="tou.yaml")
    body = build_settlement(check, tariff, facts(ev=ev_pseudonym(temp, PKEY)))
    data = sign_settlement(body, generate_key(), CHAIN).data
    registered = registered_token(TOKEN, "ISO14443", "ledger")
    data2 = sign_settlement(
        build_settlement(check, tariff, facts(ev=ev_pseudonym(registered, PKEY))),
        generate_key(),
        CHAIN,
    ).data
    for blob in (data, data2):
        for secret in (temp.id_token, TOKEN, vin, phone, phone[1:], reference):
            assert secret.encode() not in blob  # ...the settlement never does
            assert secret.lower().encode() not in blob.lower()
    assert json.loads(data)["ev"].startswith("v1:")


def test_bad_evidence_is_never_settled() -> None:
    texts, carried, _, _ = run_session()
    key = parse_public_key(carried[0]["publicKey"])
    tariff = parse_tariff(TARIFF_YAML, source="tou.yaml")
    check = check_evidence(texts[:-1], key)
    with pytest.raises(SettlementError) as caught:
        build_settlement(check, tariff, facts())
    assert caught.value.code == "missing_end"


def test_missing_intermediate_at_a_boundary_is_refused() -> None:
    texts, carried, _, _ = run_session()
    key = parse_public_key(carried[0]["publicKey"])
    tariff = parse_tariff(TARIFF_YAML, source="tou.yaml")
    # drop the 16:00 Intermediate; the pages stay increasing, so the evidence itself is fine
    check = check_evidence([texts[0], texts[2], texts[3]], key)
    assert check.ok
    with pytest.raises(SettlementError) as caught:
        build_settlement(check, tariff, facts())
    assert caught.value.code == "missing_intermediate"


@dataclass(frozen=True)
class Sample:
    at: datetime
    import_wh: int
    export_wh: int


def test_late_intermediate_within_slack_counts_as_at_the_boundary() -> None:
    tariff = parse_tariff(TARIFF_YAML, source="tou.yaml")
    boundary = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    readings = [
        Sample(boundary - timedelta(hours=1), 0, 0),
        Sample(boundary + timedelta(seconds=20), 1_000, 0),
        Sample(boundary + timedelta(minutes=30), 1_000, 500),
    ]
    with pytest.raises(SettlementError):
        interval_energy(readings, tariff)
    got = interval_energy(readings, tariff, slack=timedelta(seconds=30))
    assert [(i.start, i.import_wh, i.export_wh, i.export_price) for i in got] == [
        (boundary - timedelta(hours=1), 1_000, 0, 90000),
        (boundary, 0, 500, 450000),
    ]


def test_credit_record_names_what_it_corrects() -> None:
    texts, carried, _, _ = run_session()
    check = check_evidence(texts, parse_public_key(carried[0]["publicKey"]))
    tariff = parse_tariff(TARIFF_YAML, source="tou.yaml")
    body = build_settlement(check, tariff, facts(), corrects="stl-original")
    assert (body["type"], body["corrects"]) == ("credit", "stl-original")


def test_running_cost_and_total_cost() -> None:
    tariff = parse_tariff(TARIFF_YAML, source="tou.yaml")
    samples = [
        Sample(T0, 100, 0),
        Sample(T0 + timedelta(hours=1), 11_100, 0),
        Sample(T0 + timedelta(hours=2, minutes=30), 11_100, 3_500),
    ]
    # 11 kWh at 0.30, then the second delta is priced at its start (15:00 UTC, 0.09 export)
    assert running_cost(samples, tariff) == 11_000 * 300 - 3_500 * 90
    assert total_cost(1_234_567) == 1.234567
    assert total_cost(-500_000) == -0.5


def test_settlement_id_is_stable_and_distinct() -> None:
    assert settlement_id_for("op", "E1", "tx") == settlement_id_for("op", "E1", "tx")
    assert settlement_id_for("op", "E1", "tx") != settlement_id_for("op", "E1", "tx2")


def decimal_reference(intervals: list[tuple[int, int, int, int]]) -> int:
    total = sum(
        (Decimal(i) * Decimal(ip) - Decimal(e) * Decimal(ep) for i, e, ip, ep in intervals),
        Decimal(0),
    )
    return int((total / Decimal(1000)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 200_000),
            st.integers(0, 200_000),
            st.integers(-500_000, 2_000_000),
            st.integers(-500_000, 2_000_000),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_amounts_match_a_decimal_reference_of_the_rounding_rule(
    intervals: list[tuple[int, int, int, int]],
) -> None:
    # one series tariff entry and one signed reading per interval, an hour apart
    lines = ["id: prop", "currency: EUR", "series:"]
    readings = []
    imported = exported = 0
    for n, (imp, exp, import_price, export_price) in enumerate(intervals):
        start = T0 + timedelta(hours=n)
        lines.append(
            f'  - {{start: "{start.isoformat()}", import_price: {import_price}, '
            f"export_price: {export_price}}}"
        )
        readings.append(MeterSnapshot(start, "Intermediate", imported, exported, n + 1))
        imported += imp
        exported += exp
    readings.append(
        MeterSnapshot(T0 + timedelta(hours=len(intervals)), "End", imported, exported, 99)
    )
    tariff = parse_tariff("\n".join(lines).encode(), source="prop.yaml")
    check = EvidenceCheck(True, None, None, tuple(readings), (), "0" * 64)
    body = build_settlement(check, tariff, facts())
    assert body["amount"] == decimal_reference(intervals)
    assert body["energy"] == {"import_wh": imported, "export_wh": exported}


def test_energy_beyond_the_rated_power_is_implausible_and_never_settled() -> None:
    from csms.model import RegisterReading
    from csms.settlement import SettlementError, interval_energy

    tariff = parse_tariff(TARIFF_YAML, source="tou.yaml")
    t0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    hour = [RegisterReading(t0, 0, 0), RegisterReading(t0 + timedelta(hours=1), 0, 0)]
    # one hour at 350 kW (+10 %) is plausible; a claimed 999,999,999,000 Wh is not
    ok = [hour[0], RegisterReading(hour[1].at, 385_000, 0)]
    assert interval_energy(ok, tariff)[0].import_wh == 385_000
    for claimed in (385_002, 999_999_999_000):
        bad = [hour[0], RegisterReading(hour[1].at, claimed, 0)]
        with pytest.raises(SettlementError) as caught:
            interval_energy(bad, tariff)
        assert caught.value.code == "implausible_energy"
    # the station's configured power is honoured, for export too
    slow = [hour[0], RegisterReading(hour[1].at, 0, 12_000)]
    with pytest.raises(SettlementError):
        interval_energy(slow, tariff, max_power_w=10_000)
