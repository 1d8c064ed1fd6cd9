"""Connect a station built on the ``ocpp`` library's ChargePoint to a test CSMS.

The strict 1.6 and 2.1 stations of the CSMS tests share this: open the websocket with the
station's Basic credentials, check the negotiated subprotocol, serve the station's calls
and wait until the server has registered the connection; close everything afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from ocpp.charge_point import ChargePoint
from websockets.asyncio.client import connect

from csms.app import CsmsApp
from tests.csms.conftest import PASSWORD, STATION, auth_header, url

CP = TypeVar("CP", bound=ChargePoint)


@asynccontextmanager
async def library_station(
    csms: CsmsApp,
    make: Callable[[str, Any], CP],
    subprotocols: list[str],
    expected: str | None = None,
    *,
    registered: bool = True,
) -> AsyncIterator[CP]:
    """``make(STATION, ws)`` connected and started; with ``registered``, once the CSMS knows it."""
    ws = await connect(
        url(csms),
        subprotocols=subprotocols,  # type: ignore[arg-type]
        additional_headers=auth_header(STATION, PASSWORD),
        open_timeout=5,
    )
    if expected is not None:
        assert ws.subprotocol == expected
    cp = make(STATION, ws)
    runner = asyncio.create_task(cp.start())
    for _ in range(100 if registered else 0):  # registered just after the handshake
        if STATION in csms.server.connections:
            break
        await asyncio.sleep(0.01)
    try:
        yield cp
    finally:
        runner.cancel()
        await ws.close()
