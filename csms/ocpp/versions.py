"""The OCPP versions the CSMS speaks and what differs between them.

Per-version data only (STYLE.md, ``ocpp`` row): the websocket subprotocol, where the official
JSON schemas live, how schema files are named, and how CALLERROR codes are spelled. Adding a
version means adding one entry here and its handlers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import ocpp

_SCHEMA_ROOT = Path(ocpp.__file__).parent


@dataclass(frozen=True, slots=True)
class OcppVersion:
    subprotocol: str
    schema_dir: Path
    request_suffix: str
    # canonical code -> the spelling this version's specification uses
    error_spelling: dict[str, str] = field(default_factory=dict)

    def request_schema(self, action: str) -> Path:
        return self.schema_dir / f"{action}{self.request_suffix}.json"

    def response_schema(self, action: str) -> Path:
        return self.schema_dir / f"{action}Response.json"

    def error_code(self, code: str) -> str:
        return self.error_spelling.get(code, code)


OCPP21 = OcppVersion(
    subprotocol="ocpp2.1",
    schema_dir=_SCHEMA_ROOT / "v21" / "schemas",
    request_suffix="Request",
    # OCPP 2.1 Part 4 finally spells it right; canonical codes go out unchanged.
)

OCPP201 = OcppVersion(
    subprotocol="ocpp2.0.1",
    schema_dir=_SCHEMA_ROOT / "v201" / "schemas",
    request_suffix="Request",
    # OCPP 2.0.1 Part 4 keeps 1.6's spelling of this code; stations resend otherwise.
    error_spelling={"OccurrenceConstraintViolation": "OccurenceConstraintViolation"},
)

OCPP16 = OcppVersion(
    subprotocol="ocpp1.6",
    schema_dir=_SCHEMA_ROOT / "v16" / "schemas",
    # 1.6 names request schemas after the action alone: ``StartTransaction.json``.
    request_suffix="",
    # OCPP-J 1.6 section 4.2.3 spells these two codes its own way, and has no codes for a
    # broken RPC frame or an unknown message type: such a frame does not conform to the PDU.
    error_spelling={
        "FormatViolation": "FormationViolation",
        "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
        "RpcFrameworkError": "FormationViolation",
        "MessageTypeNotSupported": "FormationViolation",
    },
)

# Versions offered, in order of preference: the newest the station also speaks wins.
SUPPORTED: dict[str, OcppVersion] = {
    version.subprotocol: version for version in (OCPP21, OCPP201, OCPP16)
}

# Separators seen in real offers: commas (also leading, trailing or doubled) and blanks.
_OFFER_SEPARATORS = re.compile(r"[\s,]+")


def parse_offer(header_values: Iterable[str]) -> list[str]:
    """The subprotocols named in ``Sec-WebSocket-Protocol`` header values, in offer order.

    Tolerates what real stations send: a leading or trailing comma, empty items, blanks
    instead of commas, and quoted names. Duplicates are dropped.
    """
    offered: list[str] = []
    for value in header_values:
        for item in _OFFER_SEPARATORS.split(value):
            name = item.strip("\"'")
            if name and name not in offered:
                offered.append(name)
    return offered


def select_version(offered: Iterable[str]) -> OcppVersion | None:
    """Pick our most preferred version among the client's offers (tolerating stray blanks)."""
    cleaned = {item.strip().lower() for item in offered if item.strip()}
    for name, version in SUPPORTED.items():
        if name in cleaned:
            return version
    return None
