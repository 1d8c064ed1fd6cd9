"""The EVSE's own limits, as the station reports them, bound every dispatched profile.

Pure: reading the device model (NotifyReport, GetVariables) and the 1.6 configuration.
End to end: a 2.1 station on the ``ocpp`` library reports its EVSE's ``Power`` maxLimit and its
``V2XChargingCtrlr`` modes in a real NotifyReport; the real dispatcher never sends more.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from ocpp.routing import on
from ocpp.v21 import call
from ocpp.v21 import call_result as call_result21
from ocpp.v201 import call as call201

from csms.app import CsmsApp
from csms.cli import stations_group
from csms.dispatch import Decision, DispatchPolicy
from csms.dispatch_limits import NEGATIVE_LIMIT_201, StationCaps, bound, limits_for
from csms.evse_limits import (
    EvseCaps,
    EvseFact,
    caps_for,
    facts_from_configuration,
    facts_from_report,
    facts_from_variables,
    parse_power_key,
)
from csms.model import TokenRecord
from csms.service import VariableRef
from csms.store.evse_caps import EvseCapsStore
from csms.store.sqlite import CsmsStore
from tests.csms.conftest import STATION
from tests.csms.library_station import library_station
from tests.csms.test_ocpp21 import T0, TAG, Station21
from tests.csms.test_ocpp21_ev_limits import dispatch_over_a_day, session_with_needs, signed_values

POLICY = DispatchPolicy(export_threshold=100_000, charge_w=11_000, discharge_w=9_000)


@pytest.fixture
def csms_database(database: str) -> str:
    """These tests run on SQLite and on PostgreSQL."""
    return database


def power(name: str, max_limit: Any, *, evse: int | None = None, unit: str = "W") -> dict[str, Any]:
    component: dict[str, Any] = {"name": name}
    if evse is not None:
        component["evse"] = {"id": evse}
    return {
        "component": component,
        "variable": {"name": "Power"},
        "variableAttribute": [{"type": "Actual", "value": "0"}],
        "variableCharacteristics": {"dataType": "decimal", "unit": unit, "maxLimit": max_limit},
    }


def v2x(variable: str, value: str, *, evse: int | None = 1) -> dict[str, Any]:
    component: dict[str, Any] = {"name": "V2XChargingCtrlr"}
    if evse is not None:
        component["evse"] = {"id": evse}
    return {
        "component": component,
        "variable": {"name": variable},
        "variableAttribute": [{"type": "Actual", "value": value}],
        "variableCharacteristics": {"dataType": "MemberList", "supportsMonitoring": False},
    }


def test_the_device_model_says_each_evses_power_and_whether_it_discharges() -> None:
    facts = facts_from_report(
        [
            power("EVSE", 7400.9, evse=1),
            power("EVSE", 22000, evse=2),
            power("ChargingStation", 11, unit="kW"),
            power("EVSE", 1e12, evse=3),  # not a charger's rating: ignored
            power("EVSE", 5000, evse=10_000),  # an EVSE id past the bound: ignored
            power("Connector", 3000, evse=1),  # not an EVSE or station rating
            v2x("SupportedEnergyTransferModes", "AC_single_phase,AC_BPT", evse=1),
            v2x("SupportedEnergyTransferModes", "AC_three_phase", evse=2),
            v2x("Enabled", "false", evse=None),
        ]
    )
    assert [(f.evse_id, f.max_power_w, f.bidirectional) for f in facts] == [
        (1, 7400, None),
        (2, 22000, None),
        (0, 11000, None),
        (1, None, True),
        (2, None, False),
        (0, None, False),
    ]
    one = caps_for(facts, 1)
    assert (one.max_power_w, one.bidirectional) == (7400, True)
    two = caps_for(facts, 2)
    assert (two.max_power_w, two.bidirectional) == (11000, False)  # the station's is tighter
    assert caps_for(facts, 3) == EvseCaps(11000, False, facts[2].source, facts[5].source)


def test_getvariables_and_the_16_configuration_are_read_too() -> None:
    results = [
        {
            "attributeStatus": "Accepted",
            "component": {"name": "V2XChargingCtrlr", "evse": {"id": 1}},
            "variable": {"name": "SupportedEnergyTransferModes"},
            "attributeValue": "DC,DC_BPT",
        },
        {
            "attributeStatus": "UnknownVariable",
            "component": {"name": "V2XChargingCtrlr", "evse": {"id": 2}},
            "variable": {"name": "SupportedEnergyTransferModes"},
        },
    ]
    assert facts_from_variables(results) == [
        EvseFact(
            1,
            bidirectional=True,
            source="V2XChargingCtrlr.SupportedEnergyTransferModes (GetVariables)",
        )
    ]
    keys = [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        {"key": "MaxChargeRate", "readonly": True, "value": "7.4"},
    ]
    assert facts_from_configuration(keys, None) == []
    assert facts_from_configuration(keys, "MaxChargeRate:kW") == [
        EvseFact(0, max_power_w=7400, source="configuration key MaxChargeRate")
    ]
    assert facts_from_configuration(keys, "Missing") == []
    assert facts_from_configuration([{"key": "P", "readonly": True, "value": "lots"}], "P") == []
    assert parse_power_key("P") == ("P", 1)
    with pytest.raises(ValueError, match="optionally followed by :W or :kW"):
        parse_power_key("P:A")


@pytest.mark.parametrize(
    ("version", "evse", "caps", "expected"),
    [
        ("2.1", EvseCaps(max_power_w=4_000), StationCaps(), Decision("discharge", -4_000)),
        (
            "2.1",
            EvseCaps(bidirectional=False, bidirectional_source="x"),
            StationCaps(),
            Decision("charge", 11_000),
        ),
        ("2.0.1", EvseCaps(bidirectional=True), StationCaps(), Decision("discharge", -9_000)),
        # the station's "no" wins over the operator's declaration
        (
            "2.0.1",
            EvseCaps(bidirectional=False),
            StationCaps(discharge=NEGATIVE_LIMIT_201),
            Decision("charge", 11_000),
        ),
        (
            "1.6",
            EvseCaps(max_power_w=3_700, bidirectional=True),
            StationCaps(),
            Decision("charge", 3_700),
        ),
    ],
)
def test_the_evses_limits_bound_a_discharge_decision(
    version: str, evse: EvseCaps, caps: StationCaps, expected: Decision
) -> None:
    limits = limits_for(version, None if version != "2.1" else _bpt(), caps, POLICY, evse)
    assert bound(Decision("discharge", -9_000), limits) == expected
    assert bound(Decision("charge", 11_000), limits).limit_w <= (evse.max_power_w or 11_000)


def _bpt() -> Any:
    from tests.csms.test_dispatch_limits import needs

    return needs()


def test_a_201_station_that_reports_bpt_says_so_on_the_dashboard() -> None:
    from csms.dispatch_limits import discharge_summary

    reported = [
        EvseFact(
            1,
            bidirectional=True,
            source="V2XChargingCtrlr.SupportedEnergyTransferModes (NotifyReport)",
        ),
        EvseFact(1, max_power_w=7_400, source="EVSE 1 Power maxLimit (NotifyReport)"),
    ]
    assert discharge_summary("ocpp2.0.1", StationCaps(), reported) == (
        "discharge by a negative limit (reported: V2XChargingCtrlr.SupportedEnergyTransferModes"
        " (NotifyReport)); EVSE 1 rated 7400 W (EVSE 1 Power maxLimit (NotifyReport))"
    )
    why = discharge_summary("ocpp2.0.1", StationCaps(), [])
    assert why.startswith("charge only: OCPP 2.0.1 has no discharge")
    assert "V2XChargingCtrlr.SupportedEnergyTransferModes" in why
    refused = [EvseFact(0, bidirectional=False, source="V2XChargingCtrlr.Enabled (NotifyReport)")]
    assert discharge_summary("ocpp2.1", StationCaps(), refused) == (
        "charge only: the station reports no bidirectional transfer"
        " (V2XChargingCtrlr.Enabled (NotifyReport))"
    )


# -- end to end: a real NotifyReport, the real dispatcher ------------------------------------


@pytest.fixture
async def station(csms: CsmsApp) -> AsyncIterator[Station21]:
    await csms.store.add_token(TokenRecord(TAG, "ISO14443", "Accepted", "invoice", None, T0))
    async with library_station(csms, Station21, ["ocpp2.1"], "ocpp2.1") as cp:
        yield cp


def library_item(item: dict[str, Any]) -> dict[str, Any]:
    """A camelCase report item as the ``ocpp`` library's snake_case call arguments."""
    out = {
        "component": item["component"],
        "variable": item["variable"],
        "variable_attribute": item["variableAttribute"],
    }
    chars = dict(item["variableCharacteristics"])
    chars["data_type"] = chars.pop("dataType")
    if "supportsMonitoring" in chars:
        chars["supports_monitoring"] = chars.pop("supportsMonitoring")
    if "maxLimit" in chars:
        chars["max_limit"] = chars.pop("maxLimit")
    chars.setdefault("supports_monitoring", False)
    out["variable_characteristics"] = chars
    return out


async def report(station: Station21, *items: dict[str, Any]) -> None:
    await station.call(
        call.NotifyReport(
            request_id=1,
            generated_at=T0,
            seq_no=0,
            report_data=[library_item(i) for i in items],
        )
    )


async def test_a_reported_evse_power_rating_bounds_every_profile_sent(
    csms: CsmsApp, station: Station21
) -> None:
    await report(station, power("EVSE", 4_000, evse=1))
    assert (await EvseCapsStore(csms.store).caps(STATION, 1)).max_power_w == 4_000
    # the EV may take 11 kW and give 7 kW; the EVSE is rated 4 kW
    await session_with_needs(station, max_discharge_power=7_000, ev_target_energy_request=2_000)
    values = [v for p in await dispatch_over_a_day(csms, station) for v in signed_values(p)]
    assert all(-4_000 <= v <= 4_000 for v in values), values
    assert -4_000 in values and 4_000 in values


async def test_a_station_reporting_no_bidirectional_mode_is_never_asked_to_discharge(
    csms: CsmsApp, station: Station21
) -> None:
    await report(station, v2x("SupportedEnergyTransferModes", "AC_single_phase,AC_three_phase"))
    await session_with_needs(station, max_discharge_power=7_000, ev_target_energy_request=2_000)
    periods = await dispatch_over_a_day(csms, station)
    assert all(v >= 0 for p in periods for v in signed_values(p)), periods


def test_the_16_power_key_is_set_from_the_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    runner.invoke(stations_group, ["add", "CS-1", "--password", "s3cret-pass", *data])

    async def caps() -> StationCaps:
        store = await CsmsStore.open_data_dir(tmp_path)
        try:
            return await store.get_station_caps("CS-1")
        finally:
            await store.close()

    done = runner.invoke(stations_group, ["set", "CS-1", "--power-key", "MaxChargeRate:kW", *data])
    assert done.exit_code == 0, done.output
    assert asyncio.run(caps()).power_key == "MaxChargeRate:kW"
    bad = runner.invoke(stations_group, ["set", "CS-1", "--power-key", "G_MaxCurrent:A", *data])
    assert bad.exit_code == 2 and "optionally followed by :W or :kW" in bad.output
    done = runner.invoke(stations_group, ["set", "CS-1", "--power-key", "none", *data])
    assert done.exit_code == 0 and asyncio.run(caps()).power_key is None


# -- end to end on 2.0.1: the station says it can discharge ---------------------------------


async def test_a_201_station_reporting_bpt_is_discharged_and_the_dashboard_says_why(
    csms: CsmsApp, tmp_path: Path
) -> None:
    from csms.operators import OperatorRegistry
    from csms.web.deps import ReviewDeps
    from csms.web.server import start_web
    from tests.csms.test_dispatch_without_needs import TAG as TAG201
    from tests.csms.test_dispatch_without_needs import Station201, dispatch

    await csms.store.add_token(TokenRecord(TAG201, "ISO14443", "Accepted", "invoice", None, T0))
    await OperatorRegistry(csms.store).add("auditor", "auditor-pw", "auditor", "2026-01-01")
    deps = ReviewDeps(
        store=csms.store, data_dir=tmp_path, stations=csms.stations, server=csms.server
    )
    web = await start_web(deps, "127.0.0.1", 0)
    try:
        async with library_station(csms, Station201, ["ocpp2.0.1"], "ocpp2.0.1") as station:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as http:

                async def shown() -> str:
                    got = await http.get("/api/stations", auth=("auditor", "auditor-pw"))
                    (row,) = [s for s in got.json() if s["station_id"] == STATION]
                    return str(row["discharge"])

                assert (await shown()).startswith("charge only: OCPP 2.0.1 has no discharge")
                await station.call(
                    call201.NotifyReport(
                        request_id=1,
                        generated_at=T0,
                        seq_no=0,
                        report_data=[
                            library_item(
                                v2x("SupportedEnergyTransferModes", "AC_three_phase,AC_BPT")
                            ),
                            library_item(power("EVSE", 6_000, evse=1)),
                        ],
                    )
                )
                assert await shown() == (
                    "discharge by a negative limit (reported: V2XChargingCtrlr."
                    "SupportedEnergyTransferModes (NotifyReport)); EVSE 1 rated 6000 W"
                    " (EVSE 1 Power maxLimit (NotifyReport))"
                )
            # exporting pays and the EV holds energy the session gave it: a negative limit,
            # no deeper than the EVSE's rating
            await dispatch(csms, station, [(16_000, 0), (16_000, 0), (16_000, 1_500)])
            assert station.limits and min(station.limits) == -6_000, station.limits
            assert max(station.limits) <= 6_000
    finally:
        await web.stop()


class Station21Variables(Station21):
    """Reports its V2X controller through GetVariables."""

    @on("GetVariables")
    async def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        return call_result21.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "component": item["component"],
                    "variable": item["variable"],
                    "attribute_value": "AC_single_phase,AC_three_phase",
                }
                for item in get_variable_data
            ]
        )


async def test_a_getvariables_answer_is_kept_for_the_bounds(csms: CsmsApp) -> None:
    async with library_station(csms, Station21Variables, ["ocpp2.1"], "ocpp2.1"):
        results = await csms.stations.get_variables(
            STATION,
            [VariableRef("V2XChargingCtrlr", "SupportedEnergyTransferModes", evse_id=1)],
        )
    assert results[0]["attributeValue"] == "AC_single_phase,AC_three_phase"
    caps = await EvseCapsStore(csms.store).caps(STATION, 1)
    assert caps.bidirectional is False
    assert (
        caps.bidirectional_source == "V2XChargingCtrlr.SupportedEnergyTransferModes (GetVariables)"
    )
