"""The OCPP versions the CSMS speaks and what differs between them.

Per-version data only (STYLE.md, ``ocpp`` row): the websocket subprotocol, where the official
JSON schemas live, how schema files are named, and how CALLERROR codes are spelled. Adding a
version means adding one entry here and its handlers.
"""

from __future__ import annotations

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


OCPP201 = OcppVersion(
    subprotocol="ocpp2.0.1",
    schema_dir=_SCHEMA_ROOT / "v201" / "schemas",
    request_suffix="Request",
    # OCPP 2.0.1 Part 4 keeps 1.6's spelling of this code; stations resend otherwise.
    error_spelling={"OccurrenceConstraintViolation": "OccurenceConstraintViolation"},
)

# Versions offered, in order of preference. 2.1 and 1.6 slot in here with their handlers.
SUPPORTED: dict[str, OcppVersion] = {OCPP201.subprotocol: OCPP201}


def select_version(offered: list[str]) -> OcppVersion | None:
    """Pick our most preferred version among the client's offers (tolerating stray blanks)."""
    cleaned = {item.strip() for item in offered if item.strip()}
    for name, version in SUPPORTED.items():
        if name in cleaned:
            return version
    return None
