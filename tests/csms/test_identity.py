from __future__ import annotations

import hashlib
import hmac
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms.identity import (
    IdentityError,
    PseudonymKey,
    authorize,
    create_key_file,
    decrypt_personal,
    encrypt_personal,
    ev_pseudonym,
    issue_temporary_id,
    load_key_file,
    personal_data,
    pseudonym,
    registered_token,
)

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
PKEY = PseudonymKey(version=1, key=b"k" * 32)
VIN = "WVWZZZ1JZXW000001"
PHONE = "+4915112345678"


def test_temporary_id_is_central_time_limited_and_fits_ocpp() -> None:
    person = personal_data(vin=VIN, payment_reference="DE89370400440532013000")
    temp = issue_temporary_id(person, payment="invoice", now=NOW, ttl=timedelta(hours=2))
    assert temp.token_type == "Central"
    assert len(temp.id_token) <= 36
    assert VIN not in temp.id_token
    assert temp.valid_at(NOW) and temp.valid_at(NOW + timedelta(minutes=119))
    assert not temp.valid_at(NOW + timedelta(hours=2))
    other = issue_temporary_id(person, payment="invoice", now=NOW, ttl=timedelta(hours=2))
    assert other.id_token != temp.id_token


def test_authorization_paths() -> None:
    person = personal_data(phone=PHONE, payment_reference="PAY-1")
    temp = issue_temporary_id(person, payment="ledger", now=NOW, ttl=timedelta(hours=1))
    accepted = authorize(temp.id_token, "Central", temp, now=NOW, key=PKEY)
    assert (accepted.status, accepted.payment) == ("Accepted", "ledger")
    assert accepted.ev == ev_pseudonym(temp, PKEY)
    late = authorize(temp.id_token, "Central", temp, now=NOW + timedelta(hours=1), key=PKEY)
    assert late.status == "Expired" and late.ev is None
    assert authorize("NOPE", "ISO14443", None, now=NOW, key=PKEY).status == "Unknown"
    assert authorize(temp.id_token, "ISO14443", temp, now=NOW, key=PKEY).status == "Invalid"
    token = registered_token("04A2B3C4", "ISO14443", "invoice")
    assert authorize("04A2B3C4", "ISO14443", token, now=NOW, key=PKEY).payment == "invoice"


def test_pseudonym_is_versioned_keyed_hmac_not_a_plain_hash() -> None:
    token = registered_token("04A2B3C4", "ISO14443", "invoice")
    name = ev_pseudonym(token, PKEY)
    version, digest = name.split(":")
    assert version == "v1"
    expected = hmac.new(PKEY.key, b"token\x00ISO14443\x0004A2B3C4", hashlib.sha256).hexdigest()
    assert digest == expected
    assert digest != hashlib.sha256(b"04A2B3C4").hexdigest()
    rotated = PseudonymKey(version=2, key=b"j" * 32)
    assert ev_pseudonym(token, rotated).startswith("v2:")
    assert ev_pseudonym(token, rotated)[3:] != digest


def test_unregistered_ev_keeps_one_pseudonym_across_temporary_ids() -> None:
    person = personal_data(vin=VIN.lower(), payment_reference="PAY-1")
    first = issue_temporary_id(person, payment="invoice", now=NOW, ttl=timedelta(hours=1))
    later = issue_temporary_id(person, payment="invoice", now=NOW, ttl=timedelta(hours=1))
    assert ev_pseudonym(first, PKEY) == ev_pseudonym(later, PKEY)
    by_phone = personal_data(phone=PHONE, payment_reference="PAY-1")
    temp = issue_temporary_id(by_phone, payment="invoice", now=NOW, ttl=timedelta(hours=1))
    assert ev_pseudonym(temp, PKEY) != ev_pseudonym(first, PKEY)
    assert pseudonym("x", PKEY) != pseudonym("y", PKEY)


def test_personal_data_round_trips_encrypted_and_bound_to_its_row(tmp_path: Path) -> None:
    key = create_key_file(tmp_path / "personal.key")
    assert stat.S_IMODE((tmp_path / "personal.key").stat().st_mode) == 0o600
    assert load_key_file(tmp_path / "personal.key") == key
    person = personal_data(vin=VIN, phone=PHONE, payment_reference="DE89370400440532013000")
    blob = encrypt_personal(person, key, bound_to="TMPABC")
    for secret in (VIN, PHONE, "DE89370400440532013000"):
        assert secret.encode() not in blob
    assert decrypt_personal(blob, key, bound_to="TMPABC") == person
    with pytest.raises(IdentityError):
        decrypt_personal(blob, key, bound_to="TMPOTHER")
    with pytest.raises(IdentityError):
        decrypt_personal(blob, bytes(32), bound_to="TMPABC")
    edited = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(IdentityError):
        decrypt_personal(edited, key, bound_to="TMPABC")
    assert encrypt_personal(person, key, bound_to="TMPABC") != blob  # fresh nonce each time


def test_key_files_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "k"
    create_key_file(path)
    with pytest.raises(FileExistsError):
        create_key_file(path)
    path.chmod(0o644)
    with pytest.raises(IdentityError, match="chmod 600"):
        load_key_file(path)
    short = tmp_path / "short"
    short.write_bytes(b"123")
    short.chmod(0o600)
    with pytest.raises(IdentityError, match="32-byte"):
        load_key_file(short)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"payment_reference": "P"}, "VIN or a phone"),
        ({"vin": "WVWZZZ1JZXW00000I", "payment_reference": "P"}, "vin"),
        ({"vin": "SHORT", "payment_reference": "P"}, "vin"),
        ({"phone": "015112345678", "payment_reference": "P"}, "E.164"),
        ({"phone": PHONE, "payment_reference": "  "}, "payment_reference"),
    ],
)
def test_bad_personal_data_is_refused(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        personal_data(**kwargs)


def test_bad_payment_and_token_are_refused() -> None:
    with pytest.raises(IdentityError, match="invoice"):
        registered_token("A", "ISO14443", "cash")
    with pytest.raises(IdentityError, match="36"):
        registered_token("A" * 37, "ISO14443", "invoice")
