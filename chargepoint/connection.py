"""Opening the websocket to the CSMS: URL, subprotocol, HTTP Basic auth, TLS.

Security profile 1: Basic auth over ws://; 2: Basic auth over wss://, the CSMS verified against
``--ca``; 3: wss:// with the station's client certificate (``--cert``/``--key``).
"""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
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


def csms_urls(text: str) -> tuple[str, ...]:
    """The CSMS URLs in ``text`` (comma-separated: several CSMS processes, tried in turn)."""
    urls = tuple(part.strip() for part in text.split(",") if part.strip())
    if not urls:
        raise ConfigError("no CSMS URL given")
    return urls


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for wss://: the CA that issued the CSMS certificate, the station's own pair."""

    ca: Path | None = None  # None: the system's trusted CAs
    cert: Path | None = None
    key: Path | None = None  # None: the key is in ``cert``

    def __post_init__(self) -> None:
        if self.key is not None and self.cert is None:
            raise ConfigError("--key needs --cert")


def client_ssl_context(url: str, tls: TlsFiles | None) -> ssl.SSLContext | None:
    """The context for a wss:// URL (None for ws://); TLS files with ws:// are an error."""
    if urlsplit(url).scheme != "wss":
        if tls is not None and (tls.ca or tls.cert):
            raise ConfigError("TLS files (--ca, --cert) need a wss:// URL")
        return None
    tls = tls or TlsFiles()
    try:
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=None if tls.ca is None else str(tls.ca)
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if tls.cert is not None:
            context.load_cert_chain(str(tls.cert), None if tls.key is None else str(tls.key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load TLS files: {exc}") from exc
    return context


def basic_auth_header(station_id: str, password: str) -> str:
    """``Basic base64(id:password)`` as security profile 1 requires."""
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


async def open_connection(
    url: str,
    *,
    station_id: str,
    password: str | None,
    open_timeout: float,
    tls: TlsFiles | None = None,
    subprotocol: str = SUBPROTOCOL,
) -> ClientConnection:
    """Connect and check the CSMS agreed to ``subprotocol``; map failures to ConnectError."""
    context = client_ssl_context(url, tls)
    tls_kwargs: dict[str, Any] = {} if context is None else {"ssl": context}
    headers = {} if password is None else {"Authorization": basic_auth_header(station_id, password)}
    try:
        ws = await connect(
            url,
            subprotocols=[Subprotocol(subprotocol)],
            additional_headers=headers,
            open_timeout=open_timeout,
            proxy=None,
            ping_interval=20,
            ping_timeout=20,
            user_agent_header="v2g-bridge-station",
            **tls_kwargs,
        )
    except InvalidStatus as exc:
        raise HandshakeRefused(exc.response.status_code, exc.response.reason_phrase) from exc
    except InvalidURI as exc:
        raise ConfigError(str(exc)) from exc
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise ConnectError(f"cannot connect to {url}: {exc or type(exc).__name__}") from exc
    if ws.subprotocol != subprotocol:
        await ws.close()
        raise ConnectError(f"CSMS at {url} did not agree to subprotocol {subprotocol}")
    return ws
