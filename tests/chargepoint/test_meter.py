from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.ev import UJ_PER_WH, EnergyFlow, Ev, EvSpec
from chargepoint.ev_meter import EvMeter
from chargepoint.meter import (
    REGISTER_EXPORT,
    REGISTER_IMPORT,
    Identification,
    Meter,
    MeterInfo,
    MeterKeyError,
    create_meter_key,
    format_kwh,
    format_time,
    load_meter_key,
    public_key_ocmf,
    signed_meter_value,
)
from chargepoint.metering import MeterReading, MeterRequest, ReadingContext

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
WHO = Identification(id_token="04A2B3C4D5E6F7", token_type="ISO14443", evse_id="DE*V2G*E1*1")


def split(text: str) -> tuple[str, dict[str, str]]:
    assert text.startswith("OCMF|")
    payload, signature = text[len("OCMF|") :].rsplit("|", 1)
    return payload, json.loads(signature)


def flow(imported_wh: int = 0, exported_wh: int = 0) -> EnergyFlow:
    return EnergyFlow(T0, T0, imported_wh * UJ_PER_WH, exported_wh * UJ_PER_WH)


def test_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "meter.pem"
    key = create_meter_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_meter_key(path).private_numbers() == key.private_numbers()
    with pytest.raises(FileExistsError):
        create_meter_key(path)


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "meter.pem"
    create_meter_key(path)
    path.chmod(0o644)
    with pytest.raises(MeterKeyError, match="chmod 600"):
        load_meter_key(path)


def test_wrong_curve_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k1.pem"
    key = ec.generate_private_key(ec.SECP384R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    with pytest.raises(MeterKeyError, match="secp256r1"):
        load_meter_key(path)


def test_fixed_point_formats() -> None:
    assert format_kwh(1_000_000) == "1000.000"
    assert format_kwh(12_345) == "12.345"
    assert format_kwh(7) == "0.007"
    moment = datetime(2026, 11, 25, 11, 0, 0, 123_999, tzinfo=timezone(timedelta(hours=1)))
    assert format_time(moment) == "2026-11-25T10:00:00,123+0000 S"


def test_record_is_signed_over_the_exact_payload_bytes() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    meter = Meter(key, MeterInfo(serial="MTR-001"), import_wh=1_000_000, export_wh=250_500)
    record = meter.sign("Begin", T0, WHO)
    payload, signature = split(record.text)
    # the fixed-point text survives: a JSON round trip would print 1000.0
    assert '"RV":1000.000' in payload
    assert '"RV":250.500' in payload
    assert signature["SA"] == "ECDSA-secp256r1-SHA256"
    der = bytes.fromhex(signature["SD"])
    key.public_key().verify(der, payload.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    reserialised = json.dumps(json.loads(payload), separators=(",", ":")).encode()
    with pytest.raises(InvalidSignature):
        key.public_key().verify(der, reserialised, ec.ECDSA(hashes.SHA256()))


def test_payload_fields_and_registers() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    meter = Meter(key, MeterInfo(serial="MTR-001"), import_wh=500)
    begin = meter.sign("Begin", T0, WHO)
    meter.feed(flow(imported_wh=1_234))
    meter.feed(flow(exported_wh=56))
    middle = meter.sign("Intermediate", T0 + timedelta(hours=1), WHO)
    end = meter.sign("End", T0 + timedelta(hours=2), WHO)
    bodies = [json.loads(split(r.text)[0]) for r in (begin, middle, end)]
    assert [b["PG"] for b in bodies] == ["T1", "T2", "T3"]
    assert [r.page for r in (begin, middle, end)] == [1, 2, 3]
    assert [b["RD"][0]["TX"] for b in bodies] == ["B", "C", "E"]
    for body in bodies:
        assert body["FV"].startswith("1.")
        assert body["MS"] == "MTR-001"
        assert body["ID"] == WHO.id_token
        assert body["IT"] == "ISO14443"
        assert {r["RI"] for r in body["RD"]} == {REGISTER_IMPORT, REGISTER_EXPORT}
        assert {r["RU"] for r in body["RD"]} == {"kWh"}
        assert {r["ST"] for r in body["RD"]} == {"G"}
    registers = {r["RI"]: r["RV"] for r in bodies[1]["RD"]}
    assert registers == {REGISTER_IMPORT: 1.734, REGISTER_EXPORT: 0.056}
    assert bodies[2]["RD"][0]["TM"] == "2026-11-25T12:00:00,000+0000 S"


def test_sub_wh_energy_is_carried_not_lost() -> None:
    meter = Meter(ec.generate_private_key(ec.SECP256R1()), MeterInfo(serial="M"))
    for _ in range(3):
        meter.feed(EnergyFlow(T0, T0, UJ_PER_WH // 2, 0))
    assert meter.import_wh == 1
    meter.feed(EnergyFlow(T0, T0, UJ_PER_WH // 2, 0))
    assert meter.import_wh == 2


def test_signed_meter_value_object() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    meter = Meter(key, MeterInfo(serial="MTR-001"))
    record = meter.sign("End", T0, WHO)
    value = signed_meter_value(record, public_key_ocmf(key))
    assert value["encodingMethod"] == "OCMF"
    assert value["signingMethod"] == ""
    assert base64.b64decode(value["signedMeterData"]).decode() == record.text
    public = base64.b64decode(value["publicKey"]).decode()
    assert public.startswith("oca:base16:asn1:")
    der = bytes.fromhex(public[len("oca:base16:asn1:") :])
    assert serialization.load_der_public_key(der) == key.public_key()
    assert len(value["signedMeterData"]) <= 2500


def test_ev_meter_signs_begin_boundaries_and_end_as_a_meter_source() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    spec = EvSpec(60_000, 20, 11_000, 7_000, T0 + timedelta(hours=9), 50)
    source = EvMeter(
        Ev(spec, soc_pct=50, at=T0),
        Meter(key, MeterInfo(serial="M1"), import_wh=10_000),
        public_key=public_key_ocmf(key),
        evse_id="DE*V2G*E1*1",
        token_type="Central",
        boundaries=[T0 + timedelta(minutes=90), T0 + timedelta(minutes=100)],
    )
    source.set_limit(11_000, T0)

    def read(minutes: int, context: ReadingContext) -> MeterReading:
        return source.read(
            MeterRequest(T0 + timedelta(minutes=minutes), context, "tx-1", "TMPTOKEN")
        )

    carried = [read(0, ReadingContext.TRANSACTION_BEGIN).signed]
    source.set_limit(-7_000, T0 + timedelta(minutes=60))
    # one read after both boundaries passed: two Intermediate records are due
    periodic = read(120, ReadingContext.SAMPLE_PERIODIC)
    assert periodic.signed is None  # held for a clock reading or unsent(), never dropped
    held = source.unsent()
    assert [h.at for h in held] == [T0 + timedelta(minutes=90), T0 + timedelta(minutes=100)]
    # the held reading shows the registers at its own instant, not at the later read
    assert [(h.reading.import_wh, h.reading.export_wh) for h in held] == [
        (21_000, 3_500),
        (21_000, 4_666),
    ]
    assert source.unsent() == []  # handed over once
    carried.extend(h.reading.signed for h in held)
    end = read(180, ReadingContext.TRANSACTION_END)
    carried.append(end.signed)
    assert len(carried) == 4
    bodies = []
    for value in carried:
        assert value is not None
        text = base64.b64decode(value.signed_meter_data).decode()
        payload, signature = split(text)
        key.public_key().verify(
            bytes.fromhex(signature["SD"]), payload.encode(), ec.ECDSA(hashes.SHA256())
        )
        bodies.append(json.loads(payload))
    assert [b["RD"][0]["TX"] for b in bodies] == ["B", "C", "C", "E"]
    assert [b["RD"][0]["TM"][11:16] for b in bodies] == ["10:00", "11:30", "11:40", "13:00"]
    imports = [b["RD"][0]["RV"] for b in bodies]
    exports = [b["RD"][1]["RV"] for b in bodies]
    # 1 h at 11 kW, then discharge at 7 kW from 11:00: 30 min -> 3.5 kWh, 10 min more -> 1.167
    assert imports == [10.0, 21.0, 21.0, 21.0]
    assert exports == [0.0, 3.5, 4.666, 14.0]
    assert {b["IT"] for b in bodies} == {"CENTRAL"}
    assert end.power_w == -7_000 and end.import_wh == 21_000
