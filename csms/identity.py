"""Identities as in the source paper: registered tokens, temporary IDs, pseudonyms (block C).

Two ways in:

- a *pre-registered* idToken with a payment method (``invoice`` or ``ledger``);
- an *unregistered* EV: the aggregator records its unique identifier (VIN or phone number)
  and payment reference, and issues a time-limited temporary idToken of type ``Central``
  with which the session is started remotely.

Personal data is encrypted at rest (AES-256-GCM, a 32-byte key file, mode 0600) and bound to
its token by the associated data, so a blob copied to another row does not decrypt. The EV
appears in settlements only as a versioned keyed pseudonym (``v1:<HMAC-SHA256 hex>``): a
plain hash of a token or VIN could be reversed by trying candidates, a keyed one cannot
without the operator's key. Storage (SQLite) lives elsewhere; here are the pure parts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from csms.errors import CsmsError

Payment = Literal["invoice", "ledger"]
KEY_SIZE = 32
BLOB_VERSION = 1
TEMPORARY_TOKEN_TYPE = "Central"
_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")  # ISO 3779: no I, O or Q
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")  # E.164


class IdentityError(CsmsError):
    """A bad identity value, an unreadable key file or a blob that does not decrypt."""


@dataclass(frozen=True, slots=True)
class RegisteredToken:
    """A pre-registered idToken and how its sessions are paid."""

    id_token: str
    token_type: str
    payment: Payment


@dataclass(frozen=True, slots=True)
class PersonalData:
    """What only the aggregator and operator may see; never leaves them."""

    vin: str | None
    phone: str | None
    payment_reference: str


@dataclass(frozen=True, slots=True)
class TemporaryId:
    """A temporary idToken (type Central) issued for an unregistered EV."""

    id_token: str
    issued_at: datetime
    expires_at: datetime
    payment: Payment
    personal: PersonalData

    token_type: str = TEMPORARY_TOKEN_TYPE

    def valid_at(self, now: datetime) -> bool:
        return self.issued_at <= now < self.expires_at


def _check_payment(payment: str) -> Payment:
    if payment == "invoice":
        return "invoice"
    if payment == "ledger":
        return "ledger"
    raise IdentityError(f"payment: expected 'invoice' or 'ledger', got {payment!r}")


def registered_token(id_token: str, token_type: str, payment: str) -> RegisteredToken:
    """A checked registry record for a pre-registered token."""
    if not id_token or len(id_token) > 36:
        raise IdentityError("id_token: expected 1..36 characters (OCPP IdTokenType)")
    return RegisteredToken(id_token, token_type, _check_payment(payment))


def personal_data(
    *, vin: str | None = None, phone: str | None = None, payment_reference: str
) -> PersonalData:
    """Checked personal data: a VIN (ISO 3779) or an E.164 phone number, and a payment ref."""
    if vin is None and phone is None:
        raise IdentityError("an unregistered EV needs a VIN or a phone number")
    if vin is not None and not _VIN.match(vin.upper()):
        raise IdentityError("vin: expected 17 characters, digits and letters except I, O, Q")
    if phone is not None and not _PHONE.match(phone):
        raise IdentityError("phone: expected an E.164 number such as +4915112345678")
    if not payment_reference.strip():
        raise IdentityError("payment_reference: expected a non-empty reference")
    return PersonalData(vin.upper() if vin else None, phone, payment_reference)


def issue_temporary_id(
    personal: PersonalData,
    *,
    payment: str,
    now: datetime,
    ttl: timedelta,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> TemporaryId:
    """The aggregator's temporary idToken for an unregistered EV, valid for ``ttl``."""
    if now.tzinfo is None:
        raise IdentityError("now must carry a timezone")
    if ttl <= timedelta(0):
        raise IdentityError("ttl must be positive")
    token = "TMP" + base64.b32encode(random_bytes(20)).decode("ascii")  # 35 chars, <= 36
    return TemporaryId(token, now, now + ttl, _check_payment(payment), personal)


# --- keys -----------------------------------------------------------------------------------


def create_key_file(path: Path) -> bytes:
    """Write a new random 32-byte key (raw bytes, mode 0600); never overwrites."""
    key = os.urandom(KEY_SIZE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def load_key_file(path: Path) -> bytes:
    """Read a key written by :func:`create_key_file`; refuse one others can read."""
    try:
        mode = path.stat().st_mode
        key = path.read_bytes()
    except OSError as exc:
        raise IdentityError(f"{path}: cannot read key file: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise IdentityError(f"{path}: key file must not be accessible to others (chmod 600)")
    if len(key) != KEY_SIZE:
        raise IdentityError(f"{path}: expected a {KEY_SIZE}-byte key, got {len(key)} bytes")
    return key


# --- personal data at rest -----------------------------------------------------------------


def encrypt_personal(
    personal: PersonalData,
    key: bytes,
    *,
    bound_to: str,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Blob = version byte + 12-byte nonce + AES-GCM ciphertext, bound to ``bound_to``."""
    plain = json.dumps(
        {
            "vin": personal.vin,
            "phone": personal.phone,
            "payment_reference": personal.payment_reference,
        },
        sort_keys=True,
    ).encode("utf-8")
    nonce = random_bytes(12)
    sealed = AESGCM(key).encrypt(nonce, plain, _aad(bound_to))
    return bytes([BLOB_VERSION]) + nonce + sealed


def decrypt_personal(blob: bytes, key: bytes, *, bound_to: str) -> PersonalData:
    """Reverse :func:`encrypt_personal`; a wrong key, row or edited blob raises."""
    if len(blob) < 1 + 12 + 16 or blob[0] != BLOB_VERSION:
        raise IdentityError("personal data blob has an unknown format")
    try:
        plain = AESGCM(key).decrypt(blob[1:13], blob[13:], _aad(bound_to))
    except InvalidTag as exc:
        raise IdentityError("personal data blob does not decrypt with this key and row") from exc
    data = json.loads(plain)
    return PersonalData(data["vin"], data["phone"], data["payment_reference"])


def _aad(bound_to: str) -> bytes:
    return f"v2g/personal/v{BLOB_VERSION}\x00{bound_to}".encode()


# --- pseudonyms ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PseudonymKey:
    """The operator's HMAC key and its version (rotating the key bumps the version)."""

    version: int
    key: bytes

    def __post_init__(self) -> None:
        if self.version < 1 or len(self.key) < 16:
            raise IdentityError("a pseudonym key needs version >= 1 and at least 16 bytes")


def pseudonym(subject: str, key: PseudonymKey) -> str:
    """``v<version>:<HMAC-SHA256 hex>`` of a subject string; the only EV name on-chain."""
    mac = hmac.new(key.key, subject.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"v{key.version}:{mac}"


def subject_of_token(token: RegisteredToken) -> str:
    """A registered EV is known by its token (type-qualified: same text, other type, other EV)."""
    return f"token\x00{token.token_type}\x00{token.id_token}"


def subject_of_personal(personal: PersonalData) -> str:
    """An unregistered EV is known by its VIN, else its phone: stable across temporary IDs."""
    if personal.vin:
        return f"vin\x00{personal.vin}"
    assert personal.phone is not None
    return f"phone\x00{personal.phone}"


def ev_pseudonym(identity: RegisteredToken | TemporaryId, key: PseudonymKey) -> str:
    """The pseudonym a settlement carries for the EV behind ``identity``."""
    if isinstance(identity, RegisteredToken):
        return pseudonym(subject_of_token(identity), key)
    return pseudonym(subject_of_personal(identity.personal), key)


# --- authorization -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthorizationDecision:
    """The answer to Authorize / a session start: OCPP AuthorizationStatus and what follows."""

    status: Literal["Accepted", "Expired", "Unknown", "Invalid"]
    payment: Payment | None = None
    ev: str | None = None  # pseudonym, when accepted


def authorize(
    id_token: str,
    token_type: str,
    found: RegisteredToken | TemporaryId | None,
    *,
    now: datetime,
    key: PseudonymKey,
) -> AuthorizationDecision:
    """Decide on a presented token, given what the registry found for it (``None``: nothing)."""
    if found is None:
        return AuthorizationDecision("Unknown")
    if found.id_token != id_token or found.token_type != token_type:
        return AuthorizationDecision("Invalid")
    if isinstance(found, TemporaryId) and not found.valid_at(now):
        return AuthorizationDecision("Expired")
    return AuthorizationDecision("Accepted", found.payment, ev_pseudonym(found, key))
