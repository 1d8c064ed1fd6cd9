"""Exports of settled sessions: CSV for spreadsheets, OCPI 2.2.1 CDR JSON for roaming partners.

Pure functions over review rows and settlement records. A CDR's charging periods carry the
**net** energy per tariff interval (import minus export, in kWh, negative when the EV gave
back more than it took), with ENERGY_IMPORT and ENERGY_EXPORT beside it; ``total_energy`` is
the net total, so it equals the sum of the periods. ``signed_data`` holds the OCMF records
verbatim (nature, payload, whole record) for the receiving party to check. A correction
becomes a credit CDR (``credit: true``, ``credit_reference_id``) with its own amount.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from csms.evidence import NATURES, PUBLIC_KEY_PREFIX
from csms.model import MeterSample, SessionRecord, SettlementRecord
from csms.review import SessionRow
from csms.settling import signed_records
from csms.timeutil import parse_timestamp

CSV_COLUMNS = (
    "id",
    "kind",
    "settlement_id",
    "corrects",
    "station_id",
    "transaction_id",
    "evse_id",
    "started_at",
    "ended_at",
    "import_wh",
    "export_wh",
    "amount",
    "currency",
    "status",
    "reason",
    "ev",
    "block_height",
    "block_hash",
)

# OCPP idToken types -> OCPI TokenType
_TOKEN_TYPES = {
    "ISO14443": "RFID",
    "ISO15693": "RFID",
    "Central": "AD_HOC_USER",
    "eMAID": "APP_USER",
}


@dataclass(frozen=True, slots=True)
class CdrParty:
    """Who issues the CDRs and what is known of the site (OCPI needs a location)."""

    country_code: str = "DE"
    party_id: str = "V2G"
    address: str = "unknown"
    city: str = "unknown"
    country: str = "DEU"
    latitude: str = "0.000000"
    longitude: str = "0.000000"
    connector_standard: str = "IEC_62196_T2_COMBO"
    connector_format: str = "CABLE"
    connector_power_type: str = "DC"


def _money(micro: int) -> float:
    return float(Decimal(micro).scaleb(-6))


def _kwh(wh: int) -> float:
    return float(Decimal(wh).scaleb(-3))


def _ocpi_time(text: str) -> str:
    """OCPI DateTime: UTC, second precision at most three decimals, ``Z``."""
    return parse_timestamp(text).strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_rows(rows: Iterable[SessionRow]) -> list[dict[str, Any]]:
    """One line per session, each correction on its own line after the session it corrects."""
    lines: list[dict[str, Any]] = []
    for row in rows:
        lines.append(
            {
                "id": row.id,
                "kind": "settlement" if row.settlement_id else "session",
                "settlement_id": row.settlement_id or "",
                "corrects": "",
                "station_id": row.station_id,
                "transaction_id": row.transaction_id,
                "evse_id": "" if row.evse_id is None else row.evse_id,
                "started_at": row.started_at or "",
                "ended_at": row.ended_at or "",
                "import_wh": row.import_wh,
                "export_wh": row.export_wh,
                "amount": "" if row.amount is None else row.amount,
                "currency": row.currency or "",
                "status": row.status,
                "reason": row.reason or "",
                "ev": row.ev or "",
                "block_height": "" if row.block_height is None else row.block_height,
                "block_hash": row.block_hash or "",
            }
        )
        base = lines[-1]
        for credit in row.credits:
            lines.append(
                {
                    **base,
                    "id": credit.settlement_id,
                    "kind": "credit",
                    "settlement_id": credit.settlement_id,
                    "corrects": credit.corrects,
                    "amount": "" if credit.amount is None else credit.amount,
                    "status": credit.status,
                    "reason": credit.reason or "",
                    "block_height": "" if credit.block_height is None else credit.block_height,
                    "block_hash": credit.block_hash or "",
                }
            )
    return lines


def csv_text(rows: Iterable[SessionRow], *, header: bool = True) -> str:
    """The rows' CSV lines (after the header line, unless ``header`` is False: one chunk of a
    streamed export)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(csv_rows(rows))
    return out.getvalue()


def to_csv(rows: Iterable[SessionRow]) -> str:
    return csv_text(rows)


def signed_data(samples: Sequence[MeterSample], meter_key: str | None) -> dict[str, Any] | None:
    """OCPI SignedData with the session's OCMF records, or None when none were received."""
    texts, carried = signed_records(samples)
    values = []
    for text in dict.fromkeys(texts):
        parts = text.split("|")
        payload = parts[1] if len(parts) == 3 else text
        nature = "Unknown"
        try:
            nature = NATURES.get(str(json.loads(payload)["RD"][0]["TX"]), nature)
        except (ValueError, KeyError, IndexError, TypeError):
            pass
        # OCPI caps plain_data at 512 characters; the whole record is in signed_data (5000)
        values.append({"nature": nature, "plain_data": payload[:512], "signed_data": text})
    if not values:
        return None
    data: dict[str, Any] = {"encoding_method": "OCMF", "signed_values": values}
    key = _ocmf_key(carried[0] if carried else meter_key)
    if key is not None:
        data["public_key"] = key
    return data


def _ocmf_key(value: str | None) -> str | None:
    """The ``oca:base16:asn1:`` text of a key as OCPP carries it (plain or Base64)."""
    if not value:
        return None
    if not value.startswith(PUBLIC_KEY_PREFIX):
        try:
            value = base64.b64decode(value, validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            return None
    return value if value.startswith(PUBLIC_KEY_PREFIX) and len(value) <= 512 else None


def _periods(body: dict[str, Any], sign: int) -> list[dict[str, Any]]:
    periods = []
    for interval in body["intervals"]:
        net = interval["import_wh"] - interval["export_wh"]
        periods.append(
            {
                "start_date_time": _ocpi_time(interval["start"]),
                "dimensions": [
                    {"type": "ENERGY", "volume": _kwh(sign * net)},
                    {"type": "ENERGY_IMPORT", "volume": _kwh(interval["import_wh"])},
                    {"type": "ENERGY_EXPORT", "volume": _kwh(interval["export_wh"])},
                ],
                "tariff_id": body["tariff"]["id"][:36],
            }
        )
    return periods


def _tariff(body: dict[str, Any], party: CdrParty, last_updated: str) -> dict[str, Any]:
    elements = []
    for interval in body["intervals"]:
        start = parse_timestamp(interval["start"])
        elements.append(
            {
                "price_components": [
                    {"type": "ENERGY", "price": _money(interval["import_price"]), "step_size": 1}
                ],
                "restrictions": {
                    "start_date": start.strftime("%Y-%m-%d"),
                    "start_time": start.strftime("%H:%M"),
                },
            }
        )
    exports = sorted({_money(i["export_price"]) for i in body["intervals"]})
    return {
        "country_code": party.country_code,
        "party_id": party.party_id,
        "id": body["tariff"]["id"][:36],
        "currency": body["tariff"]["currency"],
        "tariff_alt_text": [
            {
                "language": "en",
                "text": "Energy fed back to the grid is credited at "
                + ", ".join(f"{p:g}" for p in exports)
                + f" {body['tariff']['currency']}/kWh.",
            }
        ],
        "elements": elements,
        "last_updated": last_updated,
    }


def cdr(
    record: SettlementRecord,
    session: SessionRecord,
    samples: Sequence[MeterSample],
    party: CdrParty,
    *,
    meter_key: str | None = None,
) -> dict[str, Any]:
    """One OCPI 2.2.1 CDR for a settlement or a credit (needs the signed body)."""
    if record.body is None:
        raise ValueError(f"{record.settlement_id} has no settlement body (flagged?)")
    body = json.loads(record.body)
    credit = record.kind == "credit"
    last_updated = _ocpi_time(record.committed_at or record.created_at)
    start, end = parse_timestamp(body["start"]), parse_timestamp(body["end"])
    net_wh = body["energy"]["import_wh"] - body["energy"]["export_wh"]
    token = session.id_token or "unknown"
    evse = f"{session.evse_id if session.evse_id is not None else 0}"
    result: dict[str, Any] = {
        "country_code": party.country_code,
        "party_id": party.party_id,
        "id": record.settlement_id[:39],
        "start_date_time": _ocpi_time(body["start"]),
        "end_date_time": _ocpi_time(body["end"]),
        "session_id": session.transaction_id[:36],
        "cdr_token": {
            "country_code": party.country_code,
            "party_id": party.party_id,
            "uid": token[:36],
            "type": _TOKEN_TYPES.get(session.id_token_type or "", "OTHER"),
            "contract_id": token[:36],
        },
        "auth_method": "COMMAND" if session.id_token_type == "Central" else "AUTH_REQUEST",
        "cdr_location": {
            "id": session.station_id[:36],
            "address": party.address,
            "city": party.city,
            "country": party.country,
            "coordinates": {"latitude": party.latitude, "longitude": party.longitude},
            "evse_uid": f"{session.station_id}*{evse}"[:36],
            "evse_id": body["evse_id"][:48],
            "connector_id": str(session.connector_id or 1),
            "connector_standard": party.connector_standard,
            "connector_format": party.connector_format,
            "connector_power_type": party.connector_power_type,
        },
        "currency": body["tariff"]["currency"],
        "tariffs": [_tariff(body, party, last_updated)],
        "charging_periods": _periods(body, -1 if credit else 1),
        "total_cost": {"excl_vat": _money(body["amount"])},
        "total_energy": _kwh(-net_wh if credit else net_wh),
        "total_time": round((end - start).total_seconds() / 3600, 6),
        "last_updated": last_updated,
    }
    data = signed_data(samples, meter_key)
    if data is not None:
        result["signed_data"] = data
    if credit:
        result["credit"] = True
        result["credit_reference_id"] = (record.corrects or "")[:39]
        if record.reason:
            result["remark"] = record.reason[:255]
    return result


def cdrs_json(cdrs: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(cdrs), indent=2, sort_keys=True) + "\n"


def cdr_array_item(item: dict[str, Any], first: bool) -> str:
    """One CDR as the next element of a JSON array being written a piece at a time: the
    pieces ``"["``, each item's, then ``cdr_array_end`` make the text ``cdrs_json`` does."""
    text = json.dumps(item, indent=2, sort_keys=True).replace("\n", "\n  ")
    return ("\n  " if first else ",\n  ") + text


def cdr_array_end(count: int) -> str:
    return "\n]\n" if count else "]\n"
