from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.ev import UJ_PER_WH, EnergyFlow
from chargepoint.meter import (
    Identification,
    Meter,
    MeterInfo,
    OcmfRecord,
    public_key_ocmf,
    public_key_pem,
    signed_meter_value,
)
from csms.evidence import (
    MeterKeyError,
    check_evidence,
    decode_signed_meter_data,
    key_fingerprint,
    load_meter_public_key,
    parse_public_key,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
WHO = Identification(id_token="04A2B3C4D5E6F7", token_type="ISO14443")
KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC = KEY.public_key()


def session(key: ec.EllipticCurvePrivateKey = KEY, serial: str = "MTR-1") -> list[OcmfRecord]:
    """Begin at 1000.000 kWh, +5 kWh import, Intermediate, +2 kWh export, End."""
    meter = Meter(key, MeterInfo(serial=serial), import_wh=1_000_000, export_wh=20_000)
    begin = meter.sign("Begin", T0, WHO)
    meter.feed(EnergyFlow(T0, T0, 5_000 * UJ_PER_WH, 0))
    middle = meter.sign("Intermediate", T0 + timedelta(hours=1), WHO)
    meter.feed(EnergyFlow(T0, T0, 0, 2_000 * UJ_PER_WH))
    end = meter.sign("End", T0 + timedelta(hours=2), WHO)
    return [begin, middle, end]


def texts(records: list[OcmfRecord]) -> list[str]:
    return [r.text for r in records]


def resign(text: str, edit: str, replacement: str, key: ec.EllipticCurvePrivateKey = KEY) -> str:
    """Edit a record's payload and sign it again: a validly signed but different record."""
    payload = text[len("OCMF|") :].rsplit("|", 1)[0]
    assert edit in payload
    payload = payload.replace(edit, replacement)
    der = key.sign(payload.encode(), ec.ECDSA(hashes.SHA256()))
    return "OCMF|" + payload + "|" + json.dumps({"SA": "ECDSA-secp256r1-SHA256", "SD": der.hex()})


def test_good_session_yields_readings_in_wh_and_digests() -> None:
    records = texts(session())
    check = check_evidence(records, PUBLIC, expected_id=WHO.id_token)
    assert check.ok, check.reason
    assert check.code is None and check.reason is None
    got = [(s.nature, s.at, s.import_wh, s.export_wh) for s in check.snapshots]
    assert got == [
        ("Begin", T0, 1_000_000, 20_000),
        ("Intermediate", T0 + timedelta(hours=1), 1_005_000, 20_000),
        ("End", T0 + timedelta(hours=2), 1_005_000, 22_000),
    ]
    assert [(d.nature, d.sha256) for d in check.records] == [
        (n, hashlib.sha256(t.encode()).hexdigest())
        for n, t in zip(["Begin", "Intermediate", "End"], records, strict=True)
    ]
    der = PUBLIC.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert check.meter_key_sha256 == hashlib.sha256(der).hexdigest()


def test_order_of_arrival_and_exact_duplicates_do_not_matter() -> None:
    records = texts(session())
    shuffled = [records[2], records[0], records[1], records[0]]
    check = check_evidence(shuffled, PUBLIC)
    assert check.ok, check.reason
    assert [s.nature for s in check.snapshots] == ["Begin", "Intermediate", "End"]
    assert len(check.records) == 3


def test_tampered_record_is_caught() -> None:
    records = texts(session())
    records[2] = records[2].replace('"RV":1005.000', '"RV":1004.000')
    check = check_evidence(records, PUBLIC)
    assert not check.ok
    assert check.code == "bad_signature"
    assert check.reason and "signature" in check.reason
    assert len(check.records) == 3  # the evidence is still described, not lost


def test_reserialised_record_fails_its_signature() -> None:
    records = texts(session())
    payload, signature = records[0][len("OCMF|") :].rsplit("|", 1)
    records[0] = "OCMF|" + json.dumps(json.loads(payload)) + "|" + signature
    assert check_evidence(records, PUBLIC).code == "bad_signature"


def test_missing_end_is_caught() -> None:
    check = check_evidence(texts(session())[:2], PUBLIC)
    assert (check.ok, check.code) == (False, "missing_end")


def test_missing_begin_is_caught() -> None:
    check = check_evidence(texts(session())[1:], PUBLIC)
    assert (check.ok, check.code) == (False, "missing_begin")


def test_register_going_backwards_is_caught() -> None:
    records = texts(session())
    # validly signed, but the export register drops from 22.000 to 19.000 kWh
    records[2] = resign(records[2], '"RV":22.000', '"RV":19.000')
    check = check_evidence(records, PUBLIC)
    assert (check.ok, check.code) == (False, "register_backwards")
    assert check.reason and "01-00:C2.08.00*FF" in check.reason


def test_the_three_failures_have_distinct_reasons() -> None:
    good = texts(session())
    tampered = [*good[:2], good[2].replace('"RV":1005.000', '"RV":1004.000')]
    backwards = [*good[:2], resign(good[2], '"RV":22.000', '"RV":19.000')]
    reasons = {check_evidence(r, PUBLIC).reason for r in (tampered, good[:2], backwards)}
    assert len(reasons) == 3 and None not in reasons


def test_another_meters_key_is_caught() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    check = check_evidence(texts(session(key=other)), PUBLIC)
    assert check.code == "bad_signature"


def test_records_from_two_meters_are_caught() -> None:
    records = texts(session())
    records[1] = texts(session(serial="MTR-2"))[1]
    assert check_evidence(records, PUBLIC).code == "meter_mismatch"


def test_repeated_page_is_caught() -> None:
    records = texts(session())
    records[1] = resign(records[1], '"PG":"T2"', '"PG":"T1"')
    assert check_evidence(records, PUBLIC).code == "pagination"


def test_clock_going_backwards_is_caught() -> None:
    records = texts(session())
    records[2] = resign(records[2], "T12:00:00,000", "T09:00:00,000")
    assert check_evidence(records, PUBLIC).code == "time_backwards"


def test_record_of_another_token_is_caught() -> None:
    check = check_evidence(texts(session()), PUBLIC, expected_id="SOMEONE-ELSE")
    assert check.code == "identification_mismatch"


def test_record_without_export_register_is_caught() -> None:
    records = texts(session())
    records[1] = resign(records[1], "01-00:C2.08.00*FF", "01-00:C1.08.00*FF")
    assert check_evidence(records, PUBLIC).code == "missing_register"


def test_fractional_wh_is_refused() -> None:
    records = texts(session())
    records[1] = resign(records[1], '"RV":1005.000', '"RV":1005.0005')
    assert check_evidence(records, PUBLIC).code == "bad_unit"


def test_garbage_is_a_result_not_an_exception() -> None:
    check = check_evidence(["OCMF|{not json|{}", *texts(session())], PUBLIC)
    assert (check.ok, check.code) == (False, "malformed")
    assert [d.nature for d in check.records][-1] == "Unknown"
    assert check_evidence([], PUBLIC).code == "empty"


def test_carried_key_must_be_the_registered_one() -> None:
    records = session()
    other = ec.generate_private_key(ec.SECP256R1())
    carried = [signed_meter_value(records[0], public_key_ocmf(other))["publicKey"]]
    assert check_evidence(texts(records), PUBLIC, carried_keys=carried).code == "wrong_meter_key"
    own = [signed_meter_value(records[0], public_key_ocmf(KEY))["publicKey"]]
    assert check_evidence(texts(records), PUBLIC, carried_keys=own).ok


def test_public_key_forms_and_signed_meter_data() -> None:
    ocmf = public_key_ocmf(KEY)
    pem = PUBLIC.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forms: list[str | bytes] = [ocmf, base64.b64encode(ocmf.encode()).decode(), pem]
    assert {key_fingerprint(parse_public_key(f)) for f in forms} == {key_fingerprint(PUBLIC)}
    record = session()[0]
    data = signed_meter_value(record, ocmf)["signedMeterData"]
    assert decode_signed_meter_data(data) == record.text
    with pytest.raises(MeterKeyError):
        parse_public_key("oca:base16:asn1:00ff")
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(MeterKeyError, match="P-256"):
        parse_public_key(
            p384.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def test_records_outside_the_transaction_window_are_caught() -> None:
    records = texts(session())
    inside = (T0 - timedelta(seconds=5), T0 + timedelta(hours=2, seconds=5))
    assert check_evidence(records, PUBLIC, window=inside).ok
    later = (T0 + timedelta(days=1), T0 + timedelta(days=1, hours=3))
    check = check_evidence(records, PUBLIC, window=later)
    assert (check.ok, check.code) == (False, "outside_session")


def test_meter_key_file_registration(tmp_path: Path) -> None:
    path = tmp_path / "meter.pub"
    path.write_bytes(public_key_pem(KEY))
    assert key_fingerprint(load_meter_public_key(path)) == key_fingerprint(PUBLIC)
    path.write_text(public_key_ocmf(KEY) + "\n")
    assert key_fingerprint(load_meter_public_key(path)) == key_fingerprint(PUBLIC)
    path.write_text("not a key")
    with pytest.raises(MeterKeyError, match=r"meter\.pub"):
        load_meter_public_key(path)
    with pytest.raises(MeterKeyError, match="cannot read"):
        load_meter_public_key(tmp_path / "absent.pub")


@pytest.mark.parametrize(
    "value", ["1E+999990", "1" * 5000, "9223372036854775.808", "1" + "0" * 39 + ".0"]
)
def test_absurd_register_value_is_flagged_quickly(value: str) -> None:
    import time

    records = texts(session())
    records[2] = resign(records[2], '"RV":22.000', f'"RV":{value}')
    started = time.perf_counter()
    check = check_evidence(records, PUBLIC)
    assert time.perf_counter() - started < 0.5
    assert (check.ok, check.code) == (False, "out_of_range")
