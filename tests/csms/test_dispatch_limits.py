"""Every profile the dispatcher builds stays within the EV's, the EVSE's and the operator's
limits, on 1.6, 2.0.1 and 2.1 (a table of cases and a property over generated needs, caps,
prices and SoC)."""

from __future__ import annotations

import asyncio
import html
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from csms.app import CsmsApp
from csms.cli import stations_group
from csms.dispatch import Decision, DispatchPolicy, decide
from csms.dispatch_limits import NEGATIVE_LIMIT_201, StationCaps, bound, limits_for
from csms.dispatching import profile_request
from csms.evse_limits import EvseCaps
from csms.ocpp.schemas import SchemaSet
from csms.ocpp.versions import OCPP16, OCPP21, OCPP201
from csms.operators import OperatorRegistry
from csms.profile_bounds import (
    clamp_request,
    is_station_wide,
    request_limits,
    request_reactive,
)
from csms.store.charging_needs import EvChargingNeeds
from csms.store.sqlite import CsmsStore
from csms.web.deps import ReviewDeps
from csms.web.server import start_web

POLICY = DispatchPolicy(export_threshold=100_000, charge_w=11_000, discharge_w=9_000)
DISCHARGE = Decision("discharge", -9_000)
NEGATIVE = StationCaps(discharge=NEGATIVE_LIMIT_201)
NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)


def needs(
    transfer: str = "AC_BPT",
    *,
    max_charge_w: int | None = None,
    max_discharge_w: int | None = None,
    min_discharge_w: int | None = None,
    available: tuple[str, ...] = (),
    der: dict[str, int] | None = None,
) -> EvChargingNeeds:
    """Needs as stored; ``der``: the ``derChargingParameters`` the EV sent (raw only)."""
    charging: dict[str, Any] = {"requestedEnergyTransfer": transfer}
    if der is not None:
        charging["derChargingParameters"] = der
    return EvChargingNeeds(
        "CS",
        1,
        "2026-11-25T10:00:00.000Z",
        transfer,
        available_transfer=available,
        max_charge_w=max_charge_w,
        max_discharge_w=max_discharge_w,
        min_discharge_w=min_discharge_w,
        raw=json.dumps({"evseId": 1, "chargingNeeds": charging}),
    )


@pytest.mark.parametrize(
    ("version", "reported", "caps", "expected"),
    [
        # 2.1: the EV's declaration rules
        ("2.1", None, StationCaps(), Decision("charge", 11_000)),
        ("2.1", needs(max_discharge_w=0), StationCaps(), Decision("charge", 11_000)),
        ("2.1", needs(max_discharge_w=5_000), StationCaps(), Decision("discharge", -5_000)),
        ("2.1", needs(), StationCaps(), Decision("discharge", -9_000)),
        ("2.1", needs("AC_three_phase"), StationCaps(), Decision("charge", 11_000)),
        ("2.1", needs("DC", max_charge_w=7_000), StationCaps(), Decision("charge", 7_000)),
        (
            "2.1",
            needs("AC_three_phase", available=("AC_three_phase", "AC_BPT")),
            StationCaps(),
            Decision("discharge", -9_000),
        ),
        # the operator's cap, and an EV whose minimum is above it
        ("2.1", needs(), StationCaps(max_discharge_w=4_000), Decision("discharge", -4_000)),
        (
            "2.1",
            needs(min_discharge_w=5_000),
            StationCaps(max_discharge_w=4_000),
            Decision("charge", 11_000),
        ),
        (
            "2.1",
            needs(max_discharge_w=0),
            StationCaps(max_charge_w=3_000),
            Decision("charge", 3_000),
        ),
        # 2.0.1: only a station declared to take a negative limit
        ("2.0.1", None, StationCaps(), Decision("charge", 11_000)),
        ("2.0.1", needs("AC_three_phase"), StationCaps(), Decision("charge", 11_000)),
        ("2.0.1", None, NEGATIVE, Decision("discharge", -9_000)),
        ("2.0.1", needs("DC", max_charge_w=7_400), NEGATIVE, Decision("discharge", -9_000)),
        ("2.0.1", needs(max_discharge_w=0), NEGATIVE, Decision("charge", 11_000)),
        # 1.6: never
        ("1.6", needs(), NEGATIVE, Decision("charge", 11_000)),
    ],
)
def test_a_discharge_decision_is_bounded(
    version: str, reported: EvChargingNeeds | None, caps: StationCaps, expected: Decision
) -> None:
    assert bound(DISCHARGE, limits_for(version, reported, caps, POLICY)) == expected


def test_charge_only_says_why() -> None:
    on_201 = limits_for("2.0.1", None, StationCaps(), POLICY)
    assert on_201.max_discharge_w == 0
    assert on_201.charge_only_reason is not None
    assert "--discharge 2.0.1-negative-limit" in on_201.charge_only_reason
    refused = limits_for("2.1", needs(max_discharge_w=0), StationCaps(), POLICY)
    assert refused.charge_only_reason == "the EV declared maxDischargePower 0"
    assert limits_for("2.1", needs(), StationCaps(), POLICY).charge_only_reason is None


# -- the property ---------------------------------------------------------------------------

SCHEMAS = {"1.6": SchemaSet(OCPP16), "2.0.1": SchemaSet(OCPP201), "2.1": SchemaSet(OCPP21)}
TRANSFERS = ["AC_single_phase", "AC_three_phase", "DC", "AC_BPT", "DC_BPT"]
power = st.one_of(st.none(), st.integers(0, 30_000))
REACTIVE_DECLARED = ("maxChargeReactivePower", "maxDischargeReactivePower")
der_parameters = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            f"{name}{suffix}": st.integers(0, 20_000)
            for name in REACTIVE_DECLARED
            for suffix in ("", "_L2", "_L3")
        },
    ),
)


@st.composite
def ev_needs(draw: st.DrawFn) -> EvChargingNeeds | None:
    if draw(st.booleans()):
        return None
    return needs(
        draw(st.sampled_from(TRANSFERS)),
        max_charge_w=draw(power),
        max_discharge_w=draw(power),
        min_discharge_w=draw(power),
        available=tuple(draw(st.lists(st.sampled_from(TRANSFERS), max_size=3, unique=True))),
        der=draw(der_parameters),
    )


def declared_var(reported: EvChargingNeeds | None, name: str) -> int:
    """What the EV declared of one reactive power (the sum of its phases; 0: nothing)."""
    if reported is None:
        return 0
    der = json.loads(reported.raw)["chargingNeeds"].get("derChargingParameters") or {}
    if name not in der:
        return 0
    return sum(der.get(f"{name}{suffix}", 0) for suffix in ("", "_L2", "_L3"))


def reactive_ceilings(
    reported: EvChargingNeeds | None, ceiling: float, floor: float, *, station_wide: bool
) -> tuple[float, float]:
    """(absorbed, injected) var a setpointReactive may reach: what the EV declared, within the
    larger of the active bounds; a station-wide profile, the active bounds alone."""
    apparent = max(ceiling, floor)
    if station_wide:
        return apparent, apparent
    return (
        min(declared_var(reported, "maxChargeReactivePower"), apparent),
        min(declared_var(reported, "maxDischargeReactivePower"), apparent),
    )


def periods(version: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    if version == "1.6":
        return list(payload["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"])
    return list(payload["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"])


@settings(max_examples=300, deadline=None)
@given(
    version=st.sampled_from(["1.6", "2.0.1", "2.1"]),
    reported=ev_needs(),
    caps=st.builds(
        StationCaps,
        max_charge_w=power,
        max_discharge_w=power,
        discharge=st.sampled_from(["none", NEGATIVE_LIMIT_201]),
    ),
    evse=st.builds(
        EvseCaps,
        max_power_w=power,
        bidirectional=st.sampled_from([None, True, False]),
        bidirectional_source=st.just("V2XChargingCtrlr.SupportedEnergyTransferModes"),
    ),
    policy=st.builds(
        DispatchPolicy,
        export_threshold=st.integers(0, 1_000_000),
        charge_w=st.integers(0, 50_000),
        discharge_w=st.integers(0, 50_000),
    ),
    export_price=st.integers(-500_000, 2_000_000),
    soc=st.floats(0, 100),
    reserve=st.integers(0, 100),
)
def test_every_profile_sent_is_within_every_declared_limit(
    version: str,
    reported: EvChargingNeeds | None,
    caps: StationCaps,
    evse: EvseCaps,
    policy: DispatchPolicy,
    export_price: int,
    soc: float,
    reserve: int,
) -> None:
    wanted = decide(policy, export_price=export_price, soc_pct=soc, reserve_soc_pct=reserve)
    decision = bound(wanted, limits_for(version, reported, caps, policy, evse))
    payload = profile_request(
        version, decision, evse_id=1, transaction_id="7", profile_id=1, start=NOW
    )
    SCHEMAS[version].validate_request("SetChargingProfile", payload)
    ceilings = [policy.charge_w, caps.max_charge_w, evse.max_power_w]
    floors = [policy.discharge_w, caps.max_discharge_w, evse.max_power_w]
    if reported is not None:
        ceilings.append(reported.max_charge_w)
        floors.append(reported.max_discharge_w)
    may_discharge = (
        (
            (version == "2.1" and reported is not None and reported.bidirectional)
            or (version == "2.0.1" and (caps.discharge == NEGATIVE_LIMIT_201 or evse.bidirectional))
        )
        and (reported is None or reported.max_discharge_w != 0)
        and evse.bidirectional is not False
    )
    for period in periods(version, payload):
        values = [period[k] for k in ("limit", "setpoint", "dischargeLimit") if k in period]
        assert values
        for value in values:
            assert value <= min(c for c in ceilings if c is not None)
            if value < 0:
                assert may_discharge, (version, reported, caps)
                assert -value <= min(f for f in floors if f is not None)
                if reported is not None and reported.min_discharge_w is not None:
                    assert -value >= reported.min_discharge_w


# -- the operator's settings ----------------------------------------------------------------


def test_dispatch_settings_from_the_cli_reach_the_store(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    runner.invoke(stations_group, ["add", "CS-1", "--password", "s3cret-pass", *data])

    def caps() -> StationCaps:
        async def read() -> StationCaps:
            store = await CsmsStore.open_data_dir(tmp_path)
            try:
                return await store.get_station_caps("CS-1")
            finally:
                await store.close()

        return asyncio.run(read())

    assert caps() == StationCaps()
    done = runner.invoke(
        stations_group,
        ["set", "CS-1", "--discharge", NEGATIVE_LIMIT_201, "--max-discharge-w", "5000", *data],
    )
    assert done.exit_code == 0, done.output
    assert caps() == StationCaps(None, 5_000, NEGATIVE_LIMIT_201)
    done = runner.invoke(stations_group, ["set", "CS-1", "--max-charge-w", "3000", *data])
    assert done.exit_code == 0, done.output
    assert caps() == StationCaps(3_000, 5_000, NEGATIVE_LIMIT_201)
    done = runner.invoke(
        stations_group, ["set", "CS-1", "--max-discharge-w", "none", "--discharge", "none", *data]
    )
    assert caps() == StationCaps(3_000, None, "none")
    bad = runner.invoke(stations_group, ["set", "CS-1", "--max-charge-w", "-5", *data])
    assert bad.exit_code == 2 and "not a power in whole W" in bad.output
    bad = runner.invoke(stations_group, ["set", "CS-1", "--discharge", "always", *data])
    assert bad.exit_code == 2 and "always" in bad.output
    unknown = runner.invoke(stations_group, ["set", "CS-9", "--discharge", "none", *data])
    assert unknown.exit_code == 1 and "not registered" in unknown.output


def test_rated_power_from_the_cli_reaches_the_store(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    runner.invoke(stations_group, ["add", "CS-1", "--password", "s3cret-pass", *data])

    def rated() -> int | None:
        async def read() -> int | None:
            store = await CsmsStore.open_data_dir(tmp_path)
            try:
                station = await store.get_station("CS-1")
                assert station is not None
                return station.max_power_w
            finally:
                await store.close()

        return asyncio.run(read())

    assert rated() is None
    done = runner.invoke(stations_group, ["set", "CS-1", "--max-power-w", "22000", *data])
    assert done.exit_code == 0 and "rated power 22000 W" in done.output, done.output
    assert rated() == 22_000
    assert (
        runner.invoke(stations_group, ["set", "CS-1", "--max-power-w", "none", *data]).exit_code
        == 0
    )
    assert rated() is None
    for bad in ("0", "-1", "22kW"):
        refused = runner.invoke(stations_group, ["set", "CS-1", "--max-power-w", bad, *data])
        assert refused.exit_code == 2 and "--max-power-w" in refused.output, refused.output


async def test_the_dashboard_says_why_a_201_station_is_dispatched_charge_only(
    csms: CsmsApp, tmp_path: Path
) -> None:
    from tests.csms.conftest import STATION, open_client

    await OperatorRegistry(csms.store).add("auditor", "auditor-pw", "auditor", "2026-01-01")
    deps = ReviewDeps(
        store=csms.store, data_dir=tmp_path, stations=csms.stations, server=csms.server
    )
    station = await open_client(csms)  # 2.0.1
    web = await start_web(deps, "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}") as http:
            await http.post(
                "/login",
                content="name=auditor&password=auditor-pw&next=/stations",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )

            async def shown() -> tuple[str, str]:
                api = await http.get("/api/stations", auth=("auditor", "auditor-pw"))
                page = await http.get("/stations")
                assert api.status_code == page.status_code == 200, page.text
                (row,) = [s for s in api.json() if s["station_id"] == STATION]
                return row["discharge"], html.unescape(page.text)

            why, page = await shown()
            assert why.startswith("charge only: OCPP 2.0.1 has no discharge")
            assert "v2g stations set ID --discharge 2.0.1-negative-limit" in why
            assert why in page
            await csms.store.set_station_caps(
                STATION, discharge=NEGATIVE_LIMIT_201, max_discharge_w=5_000
            )
            why, page = await shown()
            assert why == (
                "discharge by a negative limit (declared for this station);"
                " discharge at most 5000 W"
            )
            assert why in page
    finally:
        await web.stop()
        await station.ws.close()


# -- the property, for profiles an operator sends -------------------------------------------

PURPOSES = {
    "1.6": ["TxProfile", "TxDefaultProfile", "ChargePointMaxProfile"],
    "2.0.1": ["TxProfile", "TxDefaultProfile", "ChargingStationMaxProfile"],
    "2.1": ["TxProfile", "TxDefaultProfile", "ChargingStationMaxProfile"],
}
SIGNED_21 = (
    "limit",
    "limit_L2",
    "dischargeLimit",
    "setpoint",
    "setpoint_L3",
    "v2xBaseline",
    "setpointReactive",
    "setpointReactive_L2",
)
value = st.one_of(st.integers(-200_000, 200_000), st.integers(-2_000, 2_000).map(lambda n: n / 10))


@st.composite
def operator_profile(draw: st.DrawFn, version: str) -> tuple[str, dict[str, Any]]:
    """An operator's SetChargingProfile or remote start with a profile, any powers at all."""
    purpose = draw(st.sampled_from(PURPOSES[version]))
    target = 0 if purpose.endswith("MaxProfile") else draw(st.integers(0, 2))
    unit = draw(st.sampled_from(["W", "A"]))
    periods = []
    for n in range(draw(st.integers(1, 4))):
        period: dict[str, Any] = {"startPeriod": n * 900}
        if draw(st.booleans()):
            period["numberPhases"] = draw(st.integers(1, 3))
        if version == "2.1":
            for name in draw(st.lists(st.sampled_from(SIGNED_21), min_size=1, unique=True)):
                period[name] = draw(value)
        else:
            period["limit"] = draw(value)
        periods.append(period)
    if version == "1.6":
        action = draw(st.sampled_from(["SetChargingProfile", "RemoteStartTransaction"]))
        profile: dict[str, Any] = {
            "chargingProfileId": 3,
            "stackLevel": 1,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Relative",
            "chargingSchedule": {"chargingRateUnit": unit, "chargingSchedulePeriod": periods},
        }
        if action == "RemoteStartTransaction":
            profile["chargingProfilePurpose"] = "TxProfile"
            return action, {
                "idTag": "T1",
                "connectorId": max(target, 1),
                "chargingProfile": profile,
            }
        return action, {"connectorId": target, "csChargingProfiles": profile}
    action = draw(st.sampled_from(["SetChargingProfile", "RequestStartTransaction"]))
    profile = {
        "id": 3,
        "stackLevel": 1,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Relative",
        "chargingSchedule": [
            {"id": 1, "chargingRateUnit": unit, "chargingSchedulePeriod": periods}
        ],
    }
    if action == "RequestStartTransaction":
        profile["chargingProfilePurpose"] = "TxProfile"
        start = {"idToken": {"idToken": "T1", "type": "Central"}, "remoteStartId": 1}
        return action, {**start, "evseId": max(target, 1), "chargingProfile": profile}
    return action, {"evseId": target, "chargingProfile": profile}


@st.composite
def operator_case(draw: st.DrawFn) -> tuple[str, str, dict[str, Any]]:
    version = draw(st.sampled_from(["1.6", "2.0.1", "2.1"]))
    return (version, *draw(operator_profile(version)))


def schedule_periods(version: str, action: str, request: dict[str, Any]) -> list[tuple[str, Any]]:
    key = "csChargingProfiles" if version == "1.6" and action == "SetChargingProfile" else None
    profile = request[key or "chargingProfile"]
    schedules = profile["chargingSchedule"]
    schedules = [schedules] if isinstance(schedules, dict) else schedules
    return [(s["chargingRateUnit"], p) for s in schedules for p in s["chargingSchedulePeriod"]]


@settings(max_examples=400, deadline=None)
@given(
    case=operator_case(),
    reported=ev_needs(),
    caps=st.builds(
        StationCaps,
        max_charge_w=power,
        max_discharge_w=power,
        discharge=st.sampled_from(["none", NEGATIVE_LIMIT_201]),
    ),
    evse=st.builds(
        EvseCaps,
        max_power_w=power,
        bidirectional=st.sampled_from([None, True, False]),
        bidirectional_source=st.just("V2XChargingCtrlr.SupportedEnergyTransferModes"),
    ),
)
def test_every_operator_profile_sent_is_within_every_declared_limit(
    case: tuple[str, str, dict[str, Any]],
    reported: EvChargingNeeds | None,
    caps: StationCaps,
    evse: EvseCaps,
) -> None:
    version, action, request = case
    station_wide = is_station_wide(version, action, request)
    limits = request_limits(version, action, request, needs=reported, caps=caps, evse=evse)
    reactive = request_reactive(version, action, request, needs=reported, limits=limits)
    # a station-wide maximum asks no EV; a remote start's EV has declared nothing yet
    needs_seen = None if station_wide or action.endswith("StartTransaction") else reported
    sent, _ = clamp_request(version, action, request, limits, reactive)
    SCHEMAS[version].validate_request(action, sent)
    ceilings = [caps.max_charge_w, evse.max_power_w]
    floors = [caps.max_discharge_w, evse.max_power_w]
    if needs_seen is not None:
        ceilings.append(needs_seen.max_charge_w)
        floors.append(needs_seen.max_discharge_w)
    station_may = evse.bidirectional is not False and (
        version == "2.1"
        or (version == "2.0.1" and (caps.discharge == NEGATIVE_LIMIT_201 or evse.bidirectional))
    )
    ev_may = station_wide or (
        (version == "2.0.1" or (needs_seen is not None and needs_seen.bidirectional))
        and (needs_seen is None or needs_seen.max_discharge_w != 0)
        and not (
            needs_seen is not None
            and needs_seen.min_discharge_w is not None
            and needs_seen.min_discharge_w > min(f for f in [*floors, 10**7] if f is not None)
        )
    )
    ceiling = min(c for c in [*ceilings, 10**7] if c is not None)
    floor = min(f for f in [*floors, 10**7] if f is not None)
    absorb, inject = reactive_ceilings(
        needs_seen,
        ceiling,
        floor if station_may and ev_may else 0,
        station_wide=station_wide,
    )
    for unit, period in schedule_periods(version, action, sent):
        volts = 230 * period.get("numberPhases", 3) if unit == "A" else 1
        for name, number in period.items():
            if name in ("startPeriod", "numberPhases"):
                continue
            watts = number * volts
            if name.startswith("setpointReactive"):
                assert -inject - 1e-6 <= watts <= absorb + 1e-6, (name, number, needs_seen)
                continue
            assert watts <= ceiling + 1e-6, (name, number, limits)
            if name.startswith("limit") and version != "2.0.1":
                assert number >= 0, (name, number)
            if name.startswith("dischargeLimit"):
                assert number <= 0, (name, number)
            if number < 0:
                assert station_may and ev_may, (version, name, number, caps, evse, needs_seen)
                assert -watts <= floor + 1e-6, (name, number, limits)
