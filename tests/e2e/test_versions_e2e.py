"""Our station in OCPP 1.6J and 2.1 against our CSMS over real sockets: sessions that settle.

A 1.6 station with a signing meter runs a session (StartTransaction, MeterValues, and a
StopTransaction carrying the OCMF Begin and End records as SignedData); a 2.1 station states
its EV's V2X charging needs and is told by the CSMS to discharge with a CentralSetpoint. Both
sessions end settled in the CSMS store, with the amount an independent computation from the
meter's own registers gives under the flat tariff written out here.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from chargepoint.backoff import Backoff
from chargepoint.clock import AcceleratedClock
from chargepoint.config import StationConfig
from chargepoint.connection import TlsFiles
from chargepoint.errors import HandshakeRefused
from chargepoint.ev import Ev
from chargepoint.ev_meter import EvMeter
from chargepoint.meter import Meter, MeterInfo, public_key_ocmf, public_key_pem
from chargepoint.runner import StationRunner, runner_for
from chargepoint.transaction import IdToken
from csms.app import CsmsApp, start_csms
from csms.blocks16.remote import set_charging_profile_request_16
from csms.blocks21.profiles import split_phases
from csms.certs import write_ca, write_server_cert, write_station_cert
from csms.config import CsmsConfig
from csms.dispatch import Decision, set_charging_profile_request
from csms.identity import PseudonymKey
from csms.model import TokenRecord
from csms.passwords import hash_password
from csms.settling import SettlementOutcome, SettlementSetup, session_closer
from csms.store.charging_needs import ChargingNeedsStore, EvChargingNeeds
from csms.tariffs import parse_tariff
from csms.timeutil import format_timestamp, parse_timestamp, utc_now
from csms.web.deps import ReviewDeps
from csms.web.service import ReviewService
from ledger.keys import generate_key
from tests.chargepoint.fakes import ev_spec

STATION, PASSWORD, TAG = "CS-VERSIONS", "station-password", "TAG-VERSIONS"
IMPORT_PRICE, EXPORT_PRICE = 300_000, 90_000  # micro-units per kWh
FLAT = f"""\
id: flat
currency: EUR
timezone: UTC
daily:
  - {{start: "00:00", import_price: {IMPORT_PRICE}, export_price: {EXPORT_PRICE}}}
""".encode()
# station time starts mid-morning, so a session never crosses the tariff's midnight boundary
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
IMPORT_START, EXPORT_START = 1_000_000, 20_000  # lifetime registers before the session
SIGNER = generate_key()


@dataclass
class Csms:
    app: CsmsApp
    meter_key: ec.EllipticCurvePrivateKey

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.app.port}/ocpp"


def session_closer_for_tests() -> Callable[..., SettlementOutcome]:
    """Settle ended sessions under the flat tariff (what ``start_csms`` wires from a config)."""
    setup = SettlementSetup(
        operator="OP-TEST",
        chain_id="v2g-test",
        signer=SIGNER,
        tariff=parse_tariff(FLAT, source="flat.yaml"),
        pseudonym_key=PseudonymKey(version=1, key=b"operator-pseudonym-key-32-bytes!"),
    )
    return session_closer(setup)


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[Csms]:
    app = await start_csms(tmp_path, CsmsConfig(port=0))
    key = ec.generate_private_key(ec.SECP256R1())
    store = app.store
    pem = public_key_pem(key).decode()
    await store.add_station(STATION, hash_password(PASSWORD), format_timestamp(utc_now()), pem)
    await store.add_token(TokenRecord(TAG, "ISO14443", "Accepted", "invoice", None, "x"))
    store.session_closer = session_closer_for_tests()
    state = Csms(app, key)
    try:
        yield state
    finally:
        await state.app.stop()


def ev_meter(
    key: ec.EllipticCurvePrivateKey,
    *,
    soc: float,
    max_discharge_w: int,
    cls: type[EvMeter] = EvMeter,
) -> EvMeter:
    spec = ev_spec(T0 + timedelta(hours=8), max_discharge_w)
    meter = Meter(key, MeterInfo(serial="MTR-1"), import_wh=IMPORT_START, export_wh=EXPORT_START)
    return cls(
        Ev(spec, soc_pct=soc, at=T0),
        meter,
        public_key=public_key_ocmf(key),
        token_type="ISO14443",
        new_ev=lambda now: Ev(spec, soc_pct=soc, at=now),  # plugged in at Begin, nothing before
    )


def station_config(url: str, version: str, *, sessions: int, speed: float) -> StationConfig:
    return StationConfig(
        url=url,
        station_id=STATION,
        password=PASSWORD,
        sessions=sessions,
        exit_when_done=sessions > 0,
        id_token=IdToken(TAG, "ISO14443"),
        session_seconds=3600,
        speed=speed,
        tx_updated_interval=600,
        connect_timeout=10,
        response_timeout=5,
        backoff=Backoff(wait_minimum=0.1, random_range=0.1, repeat_times=1),
        ocpp_version=version,
    )


def expected_amount(import_wh: int, export_wh: int) -> int:
    """The rounding rule of DESIGN.md, written out independently of the CSMS's code."""
    milli = Decimal(import_wh * IMPORT_PRICE - export_wh * EXPORT_PRICE) / 1000
    return int(milli.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


async def wait_for_session(app: CsmsApp, *, running: bool = True) -> str:
    for _ in range(200):
        sessions = await app.store.list_sessions(STATION)
        if sessions and (not running or sessions[0].state != "ended"):
            return sessions[0].transaction_id
        await asyncio.sleep(0.025)
    raise AssertionError("no session reached the CSMS")


async def wait_for_needs(app: CsmsApp) -> EvChargingNeeds:
    for _ in range(200):
        needs = await ChargingNeedsStore(app.store).latest(STATION, 1)
        if needs is not None:
            return needs
        await asyncio.sleep(0.025)
    raise AssertionError("no NotifyEVChargingNeeds reached the CSMS")


async def test_16_session_settles_with_the_amount_of_its_registers(csms: Csms) -> None:
    meter = ev_meter(csms.meter_key, soc=40, max_discharge_w=0)
    config = station_config(csms.url, "1.6", sessions=1, speed=1800)  # an hour in 2 s
    runner = runner_for(config, clock=AcceleratedClock(speed=1800, start=T0), meters={1: meter})
    assert type(runner).__name__ == "StationRunner16"
    run = asyncio.create_task(runner.run())
    try:
        transaction_id = await wait_for_session(csms.app)
        assert transaction_id.isdigit()  # the CSMS assigned a 1.6 integer transactionId
        stations = csms.app.stations
        assert stations.ocpp_version(STATION) == "ocpp1.6"
        changed = await stations.change_configuration(STATION, "MeterValueSampleInterval", "300")
        assert changed["status"] == "Accepted"
        got = await stations.get_configuration(STATION, ["MeterValueSampleInterval", "Nope"])
        assert got["configurationKey"][0]["value"] == "300"
        assert got["unknownKey"] == ["Nope"]
        assert await asyncio.wait_for(run, 15) == 0, runner.errors
    finally:
        run.cancel()
    imported = meter.meter.import_wh - IMPORT_START
    exported = meter.meter.export_wh - EXPORT_START
    assert imported > 5_000 and exported == 0  # an hour at up to 11 kW; 1.6 cannot discharge
    session = await csms.app.store.get_session(STATION, transaction_id)
    assert session is not None and session.state == "ended"
    assert (session.import_wh, session.export_wh) == (imported, exported)
    settlement = await csms.app.store.settlement_for_session(STATION, transaction_id)
    assert settlement is not None and settlement.status == "pending", settlement
    assert (settlement.import_wh, settlement.export_wh) == (imported, exported)
    assert settlement.amount == expected_amount(imported, exported)
    # 1.6 has no NotifyEVChargingNeeds: the EV's departure and target came as DataTransfer,
    # and the session page marks them as it does a 2.x EV's
    needs = await ChargingNeedsStore(csms.app.store).latest(STATION, 1)
    assert needs is not None, "the 1.6 EV's needs did not reach the CSMS"
    assert needs.departure_time == format_timestamp(meter.ev.spec.departure)
    assert needs.target_energy_wh is not None and needs.target_energy_wh > 0
    review = ReviewService(ReviewDeps(store=csms.app.store, data_dir=csms.app.data_dir))
    marks = await review.soc_marks(await review.session(settlement.settlement_id))
    assert marks.departure == parse_timestamp(needs.departure_time)
    assert marks.target_energy_wh == needs.target_energy_wh


class RecordingEvMeter(EvMeter):
    """An EvMeter that remembers every limit the station gave its EV."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits: list[int | None] = []

    def set_limit(self, limit_w: int | None, now: datetime) -> None:
        self.limits.append(limit_w)
        super().set_limit(limit_w, now)


async def wait_until_connected(app: CsmsApp) -> None:
    for _ in range(200):
        if STATION in app.stations.connected():
            return
        await asyncio.sleep(0.025)
    raise AssertionError("the station did not connect")


async def wait_until_ended(app: CsmsApp, transaction_id: str) -> None:
    for _ in range(200):
        session = await app.store.get_session(STATION, transaction_id)
        if session is not None and session.state == "ended":
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"session {transaction_id} did not end")


async def test_16_remote_session_with_a_charging_limit_settles(csms: Csms) -> None:
    meter = ev_meter(csms.meter_key, soc=40, max_discharge_w=0, cls=RecordingEvMeter)
    assert isinstance(meter, RecordingEvMeter)
    config = station_config(csms.url, "1.6", sessions=0, speed=1800)
    clock = AcceleratedClock(speed=1800, start=T0)
    run = asyncio.create_task(runner_for(config, clock=clock, meters={1: meter}).run())
    stations = csms.app.stations
    try:
        await wait_until_connected(csms.app)
        started = await stations.request_start_transaction(STATION, TAG, evse_id=1)
        assert started["status"] == "Accepted"
        transaction_id = await wait_for_session(csms.app)
        request = set_charging_profile_request_16(
            Decision("charge", 3000),
            connector_id=1,
            transaction_id=transaction_id,
            profile_id=1,
            start=clock.now(),
        )
        assert (await stations.set_charging_profile(STATION, request))["status"] == "Accepted"
        await asyncio.sleep(1.0)  # half an hour of station time at 3 kW
        stopped = await stations.request_stop_transaction(STATION, transaction_id)
        assert stopped["status"] == "Accepted"
        await wait_until_ended(csms.app, transaction_id)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    assert 3000 in meter.limits
    imported = meter.meter.import_wh - IMPORT_START
    assert 0 < imported < 11_000 // 2  # well below half an hour at the EV's full 11 kW
    session = await csms.app.store.get_session(STATION, transaction_id)
    assert session is not None and (session.import_wh, session.export_wh) == (imported, 0)
    settlement = await csms.app.store.settlement_for_session(STATION, transaction_id)
    assert settlement is not None and settlement.status == "pending", settlement
    assert settlement.amount == expected_amount(imported, 0)


async def test_16_session_across_a_csms_restart_settles_once(tmp_path: Path, csms: Csms) -> None:
    """The CSMS goes away mid-session: MeterValues and the Stop are queued and replayed."""
    app, port = csms.app, csms.app.port
    meter = ev_meter(csms.meter_key, soc=40, max_discharge_w=0)
    config = station_config(csms.url, "1.6", sessions=1, speed=900)  # an hour in 4 s
    runner = runner_for(config, clock=AcceleratedClock(speed=900, start=T0), meters={1: meter})
    run = asyncio.create_task(runner.run())
    try:
        transaction_id = await wait_for_session(app)
        await asyncio.sleep(0.5)
        await app.stop()
        await asyncio.sleep(1.0)  # the station keeps metering offline
        app = csms.app = await start_csms(tmp_path, CsmsConfig(port=port))
        app.store.session_closer = session_closer_for_tests()
        assert await asyncio.wait_for(run, 20) == 0, runner.errors
    finally:
        run.cancel()
    assert runner.connections >= 2  # it did reconnect and replay
    sessions = await app.store.list_sessions(STATION)
    assert [s.transaction_id for s in sessions] == [transaction_id]  # no second transaction
    imported = meter.meter.import_wh - IMPORT_START
    assert (sessions[0].state, sessions[0].import_wh) == ("ended", imported)
    settlement = await app.store.settlement_for_session(STATION, transaction_id)
    assert settlement is not None and settlement.status == "pending", settlement
    assert settlement.amount == expected_amount(imported, 0)
    assert len(await app.store.list_settlements()) == 1


async def test_21_v2x_session_discharges_on_a_central_setpoint_and_settles(csms: Csms) -> None:
    meter = ev_meter(csms.meter_key, soc=70, max_discharge_w=7_000, cls=RecordingEvMeter)
    assert isinstance(meter, RecordingEvMeter)
    config = station_config(csms.url, "2.1", sessions=0, speed=1800)
    clock = AcceleratedClock(speed=1800, start=T0)
    runner: StationRunner = runner_for(config, clock=clock, meters={1: meter})
    run = asyncio.create_task(runner.run())
    try:
        for _ in range(200):
            if STATION in csms.app.stations.connected():
                break
            await asyncio.sleep(0.025)
        stations = csms.app.stations
        assert stations.ocpp_version(STATION) == "ocpp2.1"
        started = await stations.request_start_transaction(STATION, TAG, token_type="ISO14443")
        assert started["status"] == "Accepted"
        transaction_id = await wait_for_session(csms.app)
        needs = await wait_for_needs(csms.app)
        assert needs.bidirectional and needs.max_discharge_w == 7_000
        assert needs.departure_time is not None
        request = set_charging_profile_request(
            Decision("discharge", -5_000),
            evse_id=1,
            transaction_id=transaction_id,
            profile_id=1,
            start=clock.now(),
            stack_level=1,  # above the dispatcher's schedule for the EV's needs (level 0)
            version="2.1",
        )
        # per phase, with the spec's field names (setpoint_L2, dischargeLimit_L3, ...)
        schedule = request["chargingProfile"]["chargingSchedule"][0]
        schedule["chargingSchedulePeriod"] = [split_phases(schedule["chargingSchedulePeriod"][0])]
        assert "setpoint_L2" in schedule["chargingSchedulePeriod"][0]
        answer = await stations.set_charging_profile(STATION, request)
        assert answer["status"] == "Accepted"
        assert meter.limits[-1] == -5_000  # the phases added up again at the station
        allowed = await stations.notify_allowed_energy_transfer(
            STATION, transaction_id, ["AC_BPT", "AC_three_phase"]
        )
        assert allowed["status"] == "Accepted"
        await asyncio.sleep(1.0)  # half an hour of station time discharging
        stopped = await stations.request_stop_transaction(STATION, transaction_id)
        assert stopped["status"] == "Accepted"
        for _ in range(200):
            session = await csms.app.store.get_session(STATION, transaction_id)
            if session is not None and session.state == "ended":
                break
            await asyncio.sleep(0.025)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    imported = meter.meter.import_wh - IMPORT_START
    exported = meter.meter.export_wh - EXPORT_START
    assert exported > 1_000  # the EV fed the grid at the CSMS's setpoint
    session = await csms.app.store.get_session(STATION, transaction_id)
    assert session is not None and session.state == "ended"
    assert (session.import_wh, session.export_wh) == (imported, exported)
    settlement = await csms.app.store.settlement_for_session(STATION, transaction_id)
    assert settlement is not None and settlement.status == "pending", settlement
    assert (settlement.import_wh, settlement.export_wh) == (imported, exported)
    assert settlement.amount == expected_amount(imported, exported)
    # the session page marks what this EV stated: its target SoC and its departure
    review = ReviewService(ReviewDeps(store=csms.app.store, data_dir=csms.app.data_dir))
    marks = await review.soc_marks(await review.session(settlement.settlement_id))
    assert marks.target_pct == meter.ev.spec.target_soc_pct
    assert marks.departure == parse_timestamp(needs.departure_time)


@pytest.mark.parametrize(("version", "subprotocol"), [("1.6", "ocpp1.6"), ("2.1", "ocpp2.1")])
async def test_station_cli_speaks_the_chosen_version(
    csms: Csms, version: str, subprotocol: str
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "v2g", "chargepoint", csms.url, STATION,
        "--password", PASSWORD, "--ocpp", version, "--id-token", TAG,
        "--sessions", "1", "--exit", "--speed", "3600",
        "--session-seconds", "1800", "--meter-interval", "300",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    negotiated = None
    for _ in range(400):
        if STATION in csms.app.stations.connected():
            negotiated = csms.app.stations.ocpp_version(STATION)
            break
        await asyncio.sleep(0.01)
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert negotiated == subprotocol
    sessions = await csms.app.store.list_sessions(STATION)
    assert len(sessions) == 1 and sessions[0].state == "ended" and sessions[0].import_wh > 0
    # 1.6 transaction ids are the CSMS's integers; 2.x ones are the station's own
    assert sessions[0].transaction_id.isdigit() == (version == "1.6")


async def test_station_cli_refuses_an_unknown_version() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "v2g", "chargepoint", "ws://127.0.0.1:9/ocpp", STATION,
        "--ocpp", "1.5",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2 and "--ocpp" in err.decode()


@pytest.mark.parametrize("version", ["1.6", "2.1"])
async def test_mutual_tls_binds_the_certificate_to_the_station_in_every_version(
    tmp_path: Path, version: str
) -> None:
    now = datetime.now(UTC)
    pki = tmp_path / "pki"
    ca = write_ca(pki, now)
    server = write_server_cert(pki, ["localhost"], now)
    for station_id in (STATION, "CS-INTRUDER"):
        write_station_cert(pki, station_id, now)
    config = CsmsConfig(
        port=0,
        security_profile=3,
        tls_cert=str(server.cert),
        tls_key=str(server.key),
        tls_ca=str(ca.cert),
    )
    app = await start_csms(tmp_path / "data", config)
    try:
        created = format_timestamp(utc_now())
        await app.store.add_station(STATION, hash_password(PASSWORD), created)
        await app.store.add_token(TokenRecord(TAG, "ISO14443", "Accepted", "invoice", None, "x"))

        async def run_with(stem: str) -> StationRunner:
            files = TlsFiles(ca=ca.cert, cert=pki / f"{stem}.pem", key=pki / f"{stem}.key")
            settings = replace(
                station_config(f"wss://localhost:{app.port}/ocpp", version, sessions=1, speed=6000),
                password=None,
                tls=files,
                session_seconds=600,
            )
            runner = runner_for(settings)
            await asyncio.wait_for(runner.run(), 20)
            return runner

        good = await run_with(f"station-{STATION}")
        assert good.errors == []
        sessions = await app.store.list_sessions(STATION)
        assert len(sessions) == 1 and sessions[0].state == "ended"
        assert sessions[0].transaction_id.isdigit() == (version == "1.6")
        intruder = await run_with("station-CS-INTRUDER")  # a valid certificate, another id
        assert isinstance(intruder.errors[0], HandshakeRefused)
        assert intruder.errors[0].status == 403
    finally:
        await app.stop()
