"""The OCPI 2.2.1 CDR field rules, written out from the spec, and a checker for them."""

from __future__ import annotations

import re
from typing import Any

# -- OCPI 2.2.1 CDR field rules (OCPI 2.2.1, section 10.4 "Object description" and the types
# of section 10.4.x / 11 / 16), written out: (name, required, type, max length or enum) --------

DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z?$")
LATITUDE = re.compile(r"^-?[0-9]{1,2}\.[0-9]{5,7}$")
LONGITUDE = re.compile(r"^-?[0-9]{1,3}\.[0-9]{5,7}$")

Rule = tuple[str, bool, Any, Any]

PRICE: list[Rule] = [("excl_vat", True, "number", None), ("incl_vat", False, "number", None)]
CDR_TOKEN: list[Rule] = [
    ("country_code", True, "cistring", 2),
    ("party_id", True, "cistring", 3),
    ("uid", True, "cistring", 36),
    ("type", True, "enum", {"AD_HOC_USER", "APP_USER", "OTHER", "RFID"}),
    ("contract_id", True, "cistring", 36),
]
GEO: list[Rule] = [("latitude", True, "latitude", 10), ("longitude", True, "longitude", 11)]
CDR_LOCATION: list[Rule] = [
    ("id", True, "cistring", 36),
    ("name", False, "string", 255),
    ("address", True, "string", 45),
    ("city", True, "string", 45),
    ("postal_code", False, "string", 10),
    ("state", False, "string", 20),
    ("country", True, "string", 3),
    ("coordinates", True, GEO, None),
    ("evse_uid", True, "cistring", 36),
    ("evse_id", True, "cistring", 48),
    ("connector_id", True, "cistring", 36),
    (
        "connector_standard",
        True,
        "enum",
        {
            "CHADEMO",
            "CHAOJI",
            "DOMESTIC_A",
            "DOMESTIC_B",
            "DOMESTIC_C",
            "DOMESTIC_D",
            "DOMESTIC_E",
            "DOMESTIC_F",
            "DOMESTIC_G",
            "DOMESTIC_H",
            "DOMESTIC_I",
            "DOMESTIC_J",
            "DOMESTIC_K",
            "DOMESTIC_L",
            "GBT_AC",
            "GBT_DC",
            "IEC_60309_2_single_16",
            "IEC_60309_2_three_16",
            "IEC_60309_2_three_32",
            "IEC_60309_2_three_64",
            "IEC_62196_T1",
            "IEC_62196_T1_COMBO",
            "IEC_62196_T2",
            "IEC_62196_T2_COMBO",
            "IEC_62196_T3A",
            "IEC_62196_T3C",
            "NEMA_5_20",
            "NEMA_6_30",
            "NEMA_6_50",
            "NEMA_10_30",
            "NEMA_10_50",
            "NEMA_14_30",
            "NEMA_14_50",
            "PANTOGRAPH_BOTTOM_UP",
            "PANTOGRAPH_TOP_DOWN",
            "TESLA_R",
            "TESLA_S",
        },
    ),
    ("connector_format", True, "enum", {"SOCKET", "CABLE"}),
    (
        "connector_power_type",
        True,
        "enum",
        {"AC_1_PHASE", "AC_2_PHASE", "AC_2_PHASE_SPLIT", "AC_3_PHASE", "DC"},
    ),
]
DIMENSION: list[Rule] = [
    (
        "type",
        True,
        "enum",
        {
            "CURRENT",
            "ENERGY",
            "ENERGY_EXPORT",
            "ENERGY_IMPORT",
            "MAX_CURRENT",
            "MIN_CURRENT",
            "MAX_POWER",
            "MIN_POWER",
            "PARKING_TIME",
            "POWER",
            "RESERVATION_TIME",
            "STATE_OF_CHARGE",
            "TIME",
        },
    ),
    ("volume", True, "number", None),
]
CHARGING_PERIOD: list[Rule] = [
    ("start_date_time", True, "datetime", None),
    ("dimensions", True, ("list+", DIMENSION), None),
    ("tariff_id", False, "cistring", 36),
]
SIGNED_VALUE: list[Rule] = [
    ("nature", True, "cistring", 32),
    ("plain_data", True, "string", 512),
    ("signed_data", True, "string", 5000),
]
SIGNED_DATA: list[Rule] = [
    ("encoding_method", True, "cistring", 36),
    ("encoding_method_version", False, "int", None),
    ("public_key", False, "string", 512),
    ("signed_values", True, ("list+", SIGNED_VALUE), None),
    ("url", False, "string", 512),
]
PRICE_COMPONENT: list[Rule] = [
    ("type", True, "enum", {"ENERGY", "FLAT", "PARKING_TIME", "TIME"}),
    ("price", True, "number", None),
    ("vat", False, "number", None),
    ("step_size", True, "int", None),
]
TARIFF_ELEMENT: list[Rule] = [
    ("price_components", True, ("list+", PRICE_COMPONENT), None),
    ("restrictions", False, "object", None),
]
TARIFF: list[Rule] = [
    ("country_code", True, "cistring", 2),
    ("party_id", True, "cistring", 3),
    ("id", True, "cistring", 36),
    ("currency", True, "string", 3),
    (
        "type",
        False,
        "enum",
        {"AD_HOC_PAYMENT", "PROFILE_CHEAP", "PROFILE_FAST", "PROFILE_GREEN", "REGULAR"},
    ),
    ("tariff_alt_text", False, "list", None),
    ("tariff_alt_url", False, "string", 2048),
    ("elements", True, ("list+", TARIFF_ELEMENT), None),
    ("last_updated", True, "datetime", None),
]
CDR: list[Rule] = [
    ("country_code", True, "cistring", 2),
    ("party_id", True, "cistring", 3),
    ("id", True, "cistring", 39),
    ("start_date_time", True, "datetime", None),
    ("end_date_time", True, "datetime", None),
    ("session_id", False, "cistring", 36),
    ("cdr_token", True, CDR_TOKEN, None),
    ("auth_method", True, "enum", {"AUTH_REQUEST", "COMMAND", "WHITELIST"}),
    ("authorization_reference", False, "cistring", 36),
    ("cdr_location", True, CDR_LOCATION, None),
    ("meter_id", False, "string", 255),
    ("currency", True, "string", 3),
    ("tariffs", False, ("list", TARIFF), None),
    ("charging_periods", True, ("list+", CHARGING_PERIOD), None),
    ("signed_data", False, SIGNED_DATA, None),
    ("total_cost", True, PRICE, None),
    ("total_fixed_cost", False, PRICE, None),
    ("total_energy", True, "number", None),
    ("total_energy_cost", False, PRICE, None),
    ("total_time", True, "number", None),
    ("total_time_cost", False, PRICE, None),
    ("total_parking_time", False, "number", None),
    ("total_parking_cost", False, PRICE, None),
    ("total_reservation_cost", False, PRICE, None),
    ("remark", False, "string", 255),
    ("invoice_reference_id", False, "cistring", 39),
    ("credit", False, "bool", None),
    ("credit_reference_id", False, "cistring", 39),
    ("home_charging_compensation", False, "bool", None),
    ("last_updated", True, "datetime", None),
]


def violations(obj: Any, rules: list[Rule], where: str = "cdr") -> list[str]:
    """Every way ``obj`` breaks the rules: missing, unknown, mistyped or too long fields."""
    if not isinstance(obj, dict):
        return [f"{where}: not an object"]
    found = []
    names = {name for name, *_ in rules}
    found += [f"{where}.{k}: not an OCPI field" for k in obj if k not in names]
    for name, required, kind, limit in rules:
        path = f"{where}.{name}"
        if name not in obj:
            if required:
                found.append(f"{path}: required")
            continue
        found += check_value(obj[name], kind, limit, path)
    return found


def check_value(value: Any, kind: Any, limit: Any, path: str) -> list[str]:
    if isinstance(kind, list):
        return violations(value, kind, path)
    if isinstance(kind, tuple):
        list_kind, item_rules = kind
        if not isinstance(value, list) or (list_kind == "list+" and not value):
            return [f"{path}: expected a {'non-empty ' if list_kind == 'list+' else ''}list"]
        return [
            e for i, item in enumerate(value) for e in violations(item, item_rules, f"{path}[{i}]")
        ]
    checks = {
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
        "list": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "cistring": lambda v: isinstance(v, str) and v.isascii() and v.isprintable(),
        "datetime": lambda v: isinstance(v, str) and DATETIME.fullmatch(v) is not None,
        "latitude": lambda v: isinstance(v, str) and LATITUDE.fullmatch(v) is not None,
        "longitude": lambda v: isinstance(v, str) and LONGITUDE.fullmatch(v) is not None,
        "enum": lambda v: v in limit,
    }
    if not checks[kind](value):
        return [f"{path}: {value!r} is not a valid {kind}"]
    if isinstance(limit, int) and len(value) > limit:
        return [f"{path}: longer than {limit}"]
    return []
