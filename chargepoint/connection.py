"""Opening the websocket to the CSMS: URL, subprotocol, HTTP Basic auth (security profile 1)."""

from __future__ import annotations

import base64
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol

from chargepoint.errors import ConfigError, ConnectError, HandshakeRefused

SUBPROTOCOL = Subprotocol("ocpp2.0.1")


def station_url(url: str, station_id: str) -> str:
    """The station's endpoint: ``url`` if it already ends in the station id, else ``url/<id>``."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ConfigError(f"CSMS URL must be ws://host:port/... or wss://..., got {url!r}")
    quoted = quote(station_id, safe="")
    trimmed = url.rstrip("/")
    last = trimmed.rsplit("/", 1)[-1]
    if last in (station_id, quoted) and trimmed.count("/") > 2:
        return trimmed
    return f"{trimmed}/{quoted}"


def basic_auth_header(station_id: str, password: str) -> str:
    """``Basic base64(id:password)`` as security profile 1 requires."""
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


async def open_connection(
    url: str, *, station_id: str, password: str | None, open_timeout: float
) -> ClientConnection:
    """Connect and check the CSMS agreed to OCPP 2.0.1; map failures to ConnectError."""
    headers = {} if password is None else {"Authorization": basic_auth_header(station_id, password)}
    try:
        ws = await connect(
            url,
            subprotocols=[SUBPROTOCOL],
            additional_headers=headers,
            open_timeout=open_timeout,
            proxy=None,
            ping_interval=20,
            ping_timeout=20,
            user_agent_header="v2g-bridge-station",
        )
    except InvalidStatus as exc:
        raise HandshakeRefused(exc.response.status_code, exc.response.reason_phrase) from exc
    except InvalidURI as exc:
        raise ConfigError(str(exc)) from exc
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise ConnectError(f"cannot connect to {url}: {exc or type(exc).__name__}") from exc
    if ws.subprotocol != SUBPROTOCOL:
        await ws.close()
        raise ConnectError(f"CSMS at {url} did not agree to subprotocol {SUBPROTOCOL}")
    return ws
