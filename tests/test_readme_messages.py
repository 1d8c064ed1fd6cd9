"""The README's table of OCPP messages per version says what the CSMS's handlers accept."""

from __future__ import annotations

from pathlib import Path

from csms.blocks import HANDLERS_201
from csms.blocks16 import HANDLERS_16
from csms.blocks21 import HANDLERS_21
from csms.operator_calls import OPERATOR_ACTIONS

README = Path(__file__).resolve().parent.parent / "README.md"
VERSIONS = {"1.6": HANDLERS_16, "2.0.1": HANDLERS_201, "2.1": HANDLERS_21}


def table() -> dict[tuple[str, str], list[str]]:
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 5 and cells[1] in ("station to CSMS", "CSMS to station"):
            rows[(cells[0], cells[1])] = cells[2:]
    return rows


def test_the_station_to_csms_rows_are_the_handlers_of_each_version() -> None:
    rows = table()
    for column, (version, handlers) in enumerate(VERSIONS.items()):
        listed = {
            name
            for (name, way), marks in rows.items()
            if way == "station to CSMS" and marks[column] == "yes"
        }
        assert listed == set(handlers), version


def test_the_csms_to_station_rows_are_what_operators_and_the_dispatcher_send() -> None:
    dispatcher = (README.parent / "csms" / "dispatching.py").read_text()
    assert '"CostUpdated"' in dispatcher and '"SetChargingProfile"' in dispatcher
    sent_itself = {"1.6": set(), "2.0.1": {"CostUpdated"}, "2.1": {"CostUpdated"}}
    rows = table()
    for column, version in enumerate(VERSIONS):
        listed = {
            name
            for (name, way), marks in rows.items()
            if way == "CSMS to station" and marks[column] == "yes"
        }
        expected = OPERATOR_ACTIONS[f"ocpp{version}"] | sent_itself[version]
        assert listed == expected, version
