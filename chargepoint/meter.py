"""The signing meter: import and export registers that sign their readings as OCMF records.

Stations sign readings the way Eichrecht meters do (DESIGN.md, "Meter evidence: OCMF"): a
record ``OCMF|{payload}|{signature}`` with ECDSA secp256r1 SHA-256 over the exact payload
bytes. One record per reading instant (Begin, Intermediate at tariff boundaries, End), each
carrying both registers:

- import ``01-00:B2.08.00*FF`` and export ``01-00:C2.08.00*FF`` (OCMF 1.4 OBIS codes);
- unit ``kWh`` with exactly three decimals (``12.345``), i.e. integer Wh, as real meters print;
- times as ``2026-11-25T10:00:00,000+0000 S`` (UTC, milliseconds, synchronised clock).

The record is built once as text, signed, and never re-serialised: a JSON round trip would
change the bytes (``1000.000`` -> ``1000.0``) and break the signature.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.errors import ConfigError
from chargepoint.ev import UJ_PER_WH, EnergyFlow

REGISTER_IMPORT = "01-00:B2.08.00*FF"
REGISTER_EXPORT = "01-00:C2.08.00*FF"
SIGNATURE_ALGORITHM = "ECDSA-secp256r1-SHA256"
PUBLIC_KEY_PREFIX = "oca:base16:asn1:"
SIGNED_METER_DATA_MAX = 2500  # OCPP 2.0.1 SignedMeterValueType.signedMeterData maxLength

Nature = Literal["Begin", "Intermediate", "End"]
_TX_CODE: dict[str, str] = {"Begin": "B", "Intermediate": "C", "End": "E"}
# OCPP 2.0.1 IdTokenEnumType -> OCMF identification type (IT)
_OCMF_ID_TYPE: dict[str, str] = {
    "Central": "CENTRAL",
    "eMAID": "EMAID",
    "ISO14443": "ISO14443",
    "ISO15693": "ISO15693",
    "Local": "LOCAL",
    "NoAuthorization": "NONE",
}


class MeterKeyError(ConfigError):
    """A meter key file is missing, malformed, of the wrong curve or readable by others."""


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """The fixed identity of a meter and its gateway, printed into every record."""

    serial: str
    vendor: str = "v2g-bridge"
    model: str = "SIM-BIDI-1"
    firmware: str = "1.0.0"
    gateway_id: str = "v2g-bridge-cp"
    gateway_serial: str = ""
    gateway_version: str = "1.0.0"


@dataclass(frozen=True, slots=True)
class Identification:
    """Who the session belongs to, as the OCMF ``I*`` fields state it."""

    id_token: str
    token_type: str  # the OCPP IdTokenEnumType
    evse_id: str = ""


@dataclass(frozen=True, slots=True)
class OcmfRecord:
    """One signed OCMF record, kept as the exact text that was signed."""

    text: str
    nature: Nature
    page: int


def create_meter_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Create a new P-256 key file (PKCS#8 PEM, mode 0600); refuse to overwrite one."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def load_meter_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Load a meter key file written by :func:`create_meter_key`."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise MeterKeyError(f"{path}: cannot read meter key: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise MeterKeyError(f"{path}: meter key must not be accessible to others (chmod 600)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except ValueError as exc:
        raise MeterKeyError(f"{path}: not a PEM private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise MeterKeyError(f"{path}: expected an ECDSA secp256r1 (P-256) key")
    return key


def public_key_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The meter's public key as DER SubjectPublicKeyInfo (what the CSMS registers)."""
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The public key as PEM, the file an operator registers with the CSMS (``--meter-key``)."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_ocmf(key: ec.EllipticCurvePrivateKey) -> str:
    """The public key in the OCA notation ``oca:base16:asn1:<DER hex>``."""
    return PUBLIC_KEY_PREFIX + public_key_der(key).hex().upper()


def format_time(at: datetime) -> str:
    """OCMF time: UTC with milliseconds, ``S`` for a synchronised clock."""
    if at.tzinfo is None:
        raise ValueError("reading time must carry a timezone")
    utc = at.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S},{utc.microsecond // 1000:03d}+0000 S"


def format_kwh(wh: int) -> str:
    """Integer Wh as a fixed-point kWh literal with three decimals."""
    if wh < 0:
        raise ValueError("register values are never negative")
    return f"{wh // 1000}.{wh % 1000:03d}"


class _Raw:
    """A JSON literal written verbatim (fixed-point numbers keep their trailing zeros)."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


def _json_text(value: Any) -> str:
    if isinstance(value, _Raw):
        return value.literal
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


class Meter:
    """Import and export registers fed by the EV's energy flow; signs OCMF records.

    Registers are lifetime registers: they start wherever the meter stands and only grow.
    Energy below one Wh is carried over, never rounded away.
    """

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        info: MeterInfo,
        *,
        import_wh: int = 0,
        export_wh: int = 0,
    ) -> None:
        self._key = key
        self.info = info
        self._import_uj = import_wh * UJ_PER_WH
        self._export_uj = export_wh * UJ_PER_WH
        self._page = 0

    def feed(self, flow: EnergyFlow) -> None:
        """Add the energy of one EV step to the registers."""
        if flow.imported_uj < 0 or flow.exported_uj < 0:
            raise ValueError("energy flows are magnitudes")
        self._import_uj += flow.imported_uj
        self._export_uj += flow.exported_uj

    @property
    def import_wh(self) -> int:
        return self._import_uj // UJ_PER_WH

    @property
    def export_wh(self) -> int:
        return self._export_uj // UJ_PER_WH

    def sign(self, nature: Nature, at: datetime, who: Identification) -> OcmfRecord:
        """Sign the current registers as one record; pagination grows with every record."""
        self._page += 1
        payload = _json_text(self._payload(nature, at, who))
        der = self._key.sign(payload.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
        signature = json.dumps({"SA": SIGNATURE_ALGORITHM, "SD": der.hex().upper()})
        return OcmfRecord(text=f"OCMF|{payload}|{signature}", nature=nature, page=self._page)

    def _payload(self, nature: Nature, at: datetime, who: Identification) -> dict[str, Any]:
        info = self.info
        time = format_time(at)
        tx = _TX_CODE[nature]
        readings = [
            _reading(time, tx, self.import_wh, REGISTER_IMPORT),
            _reading(time, tx, self.export_wh, REGISTER_EXPORT),
        ]
        payload: dict[str, Any] = {
            "FV": "1.0",
            "GI": info.gateway_id,
            "GS": info.gateway_serial or info.serial,
            "GV": info.gateway_version,
            "PG": f"T{self._page}",
            "MV": info.vendor,
            "MM": info.model,
            "MS": info.serial,
            "MF": info.firmware,
            "IS": bool(who.id_token),
            "IL": "TRUSTED" if who.id_token else "NONE",
            "IF": ["OCPP_AUTH"] if who.id_token else [],
            "IT": _OCMF_ID_TYPE.get(who.token_type, "UNDEFINED"),
            "ID": who.id_token,
        }
        if who.evse_id:
            payload["CT"] = "EVSEID"
            payload["CI"] = who.evse_id
        payload["RD"] = readings
        return payload


def _reading(time: str, tx: str, wh: int, register: str) -> dict[str, Any]:
    return {
        "TM": time,
        "TX": tx,
        "RV": _Raw(format_kwh(wh)),
        "RI": register,
        "RU": "kWh",
        "RT": "AC",
        "EF": "",
        "ST": "G",
    }


def signed_meter_value(record: OcmfRecord, public_key: str) -> dict[str, str]:
    """The OCPP 2.0.1 ``signedMeterValue`` object carrying one record (camelCase)."""
    data = base64.b64encode(record.text.encode("utf-8")).decode("ascii")
    if len(data) > SIGNED_METER_DATA_MAX:
        raise ValueError(f"signed record is {len(data)} chars, OCPP allows {SIGNED_METER_DATA_MAX}")
    return {
        "signedMeterData": data,
        "signingMethod": "",
        "encodingMethod": "OCMF",
        "publicKey": base64.b64encode(public_key.encode("ascii")).decode("ascii"),
    }
