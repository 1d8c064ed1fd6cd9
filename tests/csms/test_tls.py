"""Security profiles 2 (TLS + Basic auth) and 3 (mutual TLS) over real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from chargepoint.backoff import Backoff
from chargepoint.config import StationConfig
from chargepoint.connection import TlsFiles, open_connection
from chargepoint.errors import ConfigError as StationConfigError
from chargepoint.errors import HandshakeRefused
from chargepoint.runner import StationRunner
from csms.app import CsmsApp, start_csms
from csms.certs import (
    build_ca,
    build_station_cert,
    write_ca,
    write_issued,
    write_server_cert,
    write_station_cert,
)
from csms.config import CsmsConfig
from csms.errors import ConfigError
from csms.model import TokenRecord
from csms.passwords import hash_password
from csms.timeutil import format_timestamp, utc_now
from tests.csms.conftest import BOOT, PASSWORD, STATION, auth_header

NOW = datetime.now(UTC)
OTHER = "CS-TEST-2"


@dataclass(frozen=True)
class Pki:
    directory: Path
    ca: Path
    server_cert: Path
    server_key: Path

    def station(self, station_id: str) -> TlsFiles:
        stem = self.directory / f"station-{station_id}"
        return TlsFiles(ca=self.ca, cert=stem.with_suffix(".pem"), key=stem.with_suffix(".key"))


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    directory = tmp_path / "pki"
    ca = write_ca(directory, NOW)
    server = write_server_cert(directory, ["localhost"], NOW)
    for station_id in (STATION, OTHER):
        write_station_cert(directory, station_id, NOW)
    return Pki(directory, ca.cert, server.cert, server.key)


async def running(tmp_path: Path, pki: Pki, profile: int, *, with_ca: bool = False) -> CsmsApp:
    config = CsmsConfig(
        port=0,
        ping_interval=0.5,
        ping_timeout=0.5,
        close_timeout=0.3,
        security_profile=profile,
        tls_cert=str(pki.server_cert),
        tls_key=str(pki.server_key),
        tls_ca=str(pki.ca) if profile == 3 or with_ca else "",
    )
    app = await start_csms(tmp_path / "data", config)
    for station_id in (STATION, OTHER):
        await app.store.add_station(
            station_id, hash_password(PASSWORD), format_timestamp(utc_now())
        )
    return app


@pytest.fixture
async def profile2(tmp_path: Path, pki: Pki) -> AsyncIterator[CsmsApp]:
    app = await running(tmp_path, pki, 2)
    yield app
    await app.stop()


@pytest.fixture
async def profile3(tmp_path: Path, pki: Pki) -> AsyncIterator[CsmsApp]:
    app = await running(tmp_path, pki, 3)
    yield app
    await app.stop()


def client_context(pki: Pki, station_id: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if station_id is not None:
        files = pki.station(station_id)
        context.load_cert_chain(str(files.cert), str(files.key))
    return context


def wss(app: CsmsApp, station_id: str = STATION) -> str:
    return f"wss://localhost:{app.port}/ocpp/{station_id}"


async def open_wss(
    app: CsmsApp,
    context: ssl.SSLContext,
    station_id: str = STATION,
    headers: dict[str, str] | None = None,
) -> ClientConnection:
    return await connect(
        wss(app, station_id),
        ssl=context,
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
        additional_headers=headers or {},
        open_timeout=5,
    )


async def boot(ws: ClientConnection) -> Any:
    await ws.send(json.dumps([2, "b1", "BootNotification", BOOT]))
    return json.loads(await ws.recv())


async def refused_status(app: CsmsApp, context: ssl.SSLContext, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as info:
        await open_wss(app, context, **kwargs)
    return int(info.value.response.status_code)


# -- profile 2 ----------------------------------------------------------------------------


async def test_profile2_tls_with_basic_auth_boots(profile2: CsmsApp, pki: Pki) -> None:
    ws = await open_wss(profile2, client_context(pki), headers=auth_header(STATION, PASSWORD))
    answer = await boot(ws)
    assert answer[0] == 3 and answer[2]["status"] == "Accepted"
    await ws.close()


async def test_profile2_still_needs_the_password(profile2: CsmsApp, pki: Pki) -> None:
    status = await refused_status(
        profile2, client_context(pki), headers=auth_header(STATION, "wrong password")
    )
    assert status == 401
    assert await profile2.store.connection_log(STATION) == []


async def test_profile2_refuses_plain_websocket(profile2: CsmsApp) -> None:
    with pytest.raises(Exception):  # noqa: B017 - a TLS server does not speak plain HTTP
        await connect(
            f"ws://127.0.0.1:{profile2.port}/ocpp/{STATION}",
            subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            additional_headers=auth_header(STATION, PASSWORD),
            open_timeout=2,
        )
    assert await profile2.store.connection_log(STATION) == []


async def test_client_refuses_a_server_from_an_unknown_ca(profile2: CsmsApp) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        await open_wss(
            profile2, ssl.create_default_context(), headers=auth_header(STATION, PASSWORD)
        )


# -- profile 3 ----------------------------------------------------------------------------


async def test_profile3_certificate_of_the_station_boots(profile3: CsmsApp, pki: Pki) -> None:
    ws = await open_wss(profile3, client_context(pki, STATION))
    answer = await boot(ws)
    assert answer[0] == 3 and answer[2]["status"] == "Accepted"
    await ws.close()
    log = await profile3.store.connection_log(STATION)
    assert log and log[0][0] == "connected"


async def test_profile3_certificate_of_another_station_is_refused(
    profile3: CsmsApp, pki: Pki
) -> None:
    # OTHER's certificate, STATION's URL, even with STATION's correct password
    status = await refused_status(
        profile3,
        client_context(pki, OTHER),
        headers=auth_header(STATION, PASSWORD),
    )
    assert status == 403
    assert await profile3.store.connection_log(STATION) == []
    assert await profile3.store.connection_log(OTHER) == []
    assert STATION not in profile3.server.connections


async def test_profile3_without_a_certificate_is_refused(profile3: CsmsApp, pki: Pki) -> None:
    status = await refused_status(
        profile3, client_context(pki), headers=auth_header(STATION, PASSWORD)
    )
    assert status == 401
    assert await profile3.store.connection_log(STATION) == []


async def test_profile3_certificate_from_another_ca_fails_tls(
    profile3: CsmsApp, pki: Pki, tmp_path: Path
) -> None:
    rogue = build_station_cert(build_ca(NOW), STATION, NOW)
    files = write_issued(rogue, tmp_path / "rogue.pem", tmp_path / "rogue.key")
    context = client_context(pki)
    context.load_cert_chain(str(files.cert), str(files.key))
    # the TLS layer rejects the certificate: the handshake never gets an HTTP answer
    with pytest.raises((ssl.SSLError, OSError, InvalidMessage)):
        await open_wss(profile3, context)
    assert await profile3.store.connection_log(STATION) == []


async def test_profile3_unregistered_station_with_valid_certificate_is_refused(
    profile3: CsmsApp, pki: Pki
) -> None:
    write_station_cert(pki.directory, "CS-NEW", NOW)
    status = await refused_status(profile3, client_context(pki, "CS-NEW"), station_id="CS-NEW")
    assert status == 401
    assert await profile3.store.get_station("CS-NEW") is None


# -- the station client -------------------------------------------------------------------


async def test_station_client_connects_with_its_certificate(profile3: CsmsApp, pki: Pki) -> None:
    ws = await open_connection(
        wss(profile3), station_id=STATION, password=None, open_timeout=5, tls=pki.station(STATION)
    )
    assert ws.subprotocol == "ocpp2.0.1"
    await ws.close()


async def test_station_client_is_told_of_a_mismatch(profile3: CsmsApp, pki: Pki) -> None:
    with pytest.raises(HandshakeRefused) as info:
        await open_connection(
            wss(profile3), station_id=STATION, password=None, open_timeout=5, tls=pki.station(OTHER)
        )
    assert info.value.status == 403


async def test_station_runs_a_session_over_mutual_tls(profile3: CsmsApp, pki: Pki) -> None:
    config = StationConfig(
        url=f"wss://localhost:{profile3.port}/ocpp",
        station_id=STATION,
        tls=pki.station(STATION),
        sessions=1,
        exit_when_done=True,
        session_seconds=600,
        tx_updated_interval=60,
        speed=6_000,
        connect_timeout=5,
        response_timeout=5,
        backoff=Backoff(wait_minimum=0.05, random_range=0.05, repeat_times=1),
    )
    await profile3.store.add_token(
        TokenRecord(config.id_token.id_token, "ISO14443", "Accepted", "invoice", None, "2026")
    )
    runner = StationRunner(config)
    assert await runner.run() == 0, runner.errors
    sessions = await profile3.store.list_sessions(STATION)
    assert len(sessions) == 1 and sessions[0].state == "ended"
    assert sessions[0].import_wh > 0


async def test_station_profile2_over_tls_with_password(profile2: CsmsApp, pki: Pki) -> None:
    ws = await open_connection(
        wss(profile2),
        station_id=STATION,
        password=PASSWORD,
        open_timeout=5,
        tls=TlsFiles(ca=pki.ca),
    )
    assert ws.subprotocol == "ocpp2.0.1"
    await ws.close()


def test_station_tls_files_need_wss(pki: Pki) -> None:
    from chargepoint.connection import client_ssl_context

    with pytest.raises(StationConfigError, match="wss://"):
        client_ssl_context("ws://localhost:9000/ocpp/X", pki.station(STATION))
    assert client_ssl_context("ws://localhost:9000/ocpp/X", None) is None


# -- configuration ------------------------------------------------------------------------


async def test_unreadable_certificate_is_a_config_error(tmp_path: Path) -> None:
    config = CsmsConfig(
        port=0, security_profile=2, tls_cert=str(tmp_path / "no.pem"), tls_key="no.key"
    )
    with pytest.raises(ConfigError, match="tls_cert"):
        await start_csms(tmp_path / "data", config)


# -- a station's own profile from the registry --------------------------------------------


async def test_profile3_csms_serves_a_legacy_station_on_basic_auth(
    profile3: CsmsApp, pki: Pki
) -> None:
    await profile3.store.set_security_profile(OTHER, 2)
    ws = await open_wss(
        profile3, client_context(pki), station_id=OTHER, headers=auth_header(OTHER, PASSWORD)
    )
    assert (await boot(ws))[0] == 3
    await ws.close()
    # the downgrade is OTHER's alone: STATION still needs its certificate
    status = await refused_status(
        profile3, client_context(pki), headers=auth_header(STATION, PASSWORD)
    )
    assert status == 401
    # and a wrong password is still wrong
    status = await refused_status(
        profile3, client_context(pki), station_id=OTHER, headers=auth_header(OTHER, "nope")
    )
    assert status == 401


async def test_profile2_csms_holds_a_profile3_station_to_its_certificate(
    tmp_path: Path, pki: Pki
) -> None:
    app = await running(tmp_path, pki, 2, with_ca=True)
    try:
        await app.store.set_security_profile(STATION, 3)
        with_password = auth_header(STATION, PASSWORD)
        assert await refused_status(app, client_context(pki), headers=with_password) == 401
        assert await refused_status(app, client_context(pki, OTHER)) == 403
        ws = await open_wss(app, client_context(pki, STATION))
        assert (await boot(ws))[0] == 3
        await ws.close()
        # OTHER follows the CSMS's profile 2: Basic auth over TLS
        ws = await open_wss(
            app, client_context(pki), station_id=OTHER, headers=auth_header(OTHER, PASSWORD)
        )
        await ws.close()
        await app.store.set_security_profile(STATION, None)
        ws = await open_wss(app, client_context(pki), headers=with_password)
        await ws.close()
    finally:
        await app.stop()


async def test_profile1_csms_refuses_a_station_that_must_use_tls(tmp_path: Path) -> None:
    app = await start_csms(tmp_path / "data", CsmsConfig(port=0, close_timeout=0.3))
    try:
        await app.store.add_station(STATION, hash_password(PASSWORD), format_timestamp(utc_now()))
        await app.store.set_security_profile(STATION, 2)
        with pytest.raises(InvalidStatus) as info:
            await connect(
                f"ws://127.0.0.1:{app.port}/ocpp/{STATION}",
                subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
                additional_headers=auth_header(STATION, PASSWORD),
            )
        assert info.value.response.status_code == 401
        assert await app.store.connection_log(STATION) == []
    finally:
        await app.stop()
