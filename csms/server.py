"""The CSMS websocket server: handshake checks, the live-connection registry, start and stop.

Handshake (refused before anything is stored): the path must be ``/ocpp/<stationId>`` or
``/<stationId>``; the client must offer one of our subprotocols; the station must be registered
and present the right HTTP Basic credentials (security profiles 1 and 2), or, with profile 3,
a client certificate whose CN is the station id (``csms.tls``). The profile is the CSMS's
unless the registry gives the station its own (a legacy station on Basic auth over TLS).
Past ``max_connections`` live stations a new one gets 503. One live connection per station
id: a new one replaces the old, here or, with processes sharing a PostgreSQL database
(``csms.cluster``), on whichever process held it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import gc
import logging
import os
import weakref
from collections import Counter
from collections.abc import Sequence
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from csms import gc_pacing
from csms.blocks import HANDLERS_201
from csms.blocks16 import HANDLERS_16
from csms.blocks21 import HANDLERS_21
from csms.cluster import Cluster
from csms.connection import StationConnection
from csms.context import CsmsServices, StationContext
from csms.credentials import CredentialChecker
from csms.evse_discovery import FOLLOW_UPS
from csms.limits import PendingLimit, TokenBucket
from csms.looplag import LoopLagMonitor
from csms.model import StationRecord
from csms.ocpp.rpc import Dispatcher, Handler
from csms.ocpp.schemas import SchemaSet
from csms.ocpp.tolerance import RequestSchemas
from csms.ocpp.versions import SUPPORTED, OcppVersion, parse_offer, select_version
from csms.pending_hash import PendingHasher
from csms.registry_watch import RegistryWatch
from csms.station_import import MAX_STATION_ID
from csms.throttle import AuthThrottle
from csms.tls import check_client_certificate, server_ssl_context
from csms.ws_connection import StationWebsocket

log = logging.getLogger(__name__)

# Connections the kernel may hold for us before we accept them (capped by net.core.somaxconn).
# asyncio's default of 100 fills in 0.2 s of a 500/s reconnect storm whenever the event loop
# is busy for a moment; the kernel then drops the handshakes and the stations' TCP stacks
# resend them after 1, 2, 4... seconds, which is what a storm's connect latency was made of.
LISTEN_BACKLOG = 4096


def station_id_from_path(path: str) -> str | None:
    """``/ocpp/CS001`` or ``/CS001`` -> ``CS001``; anything else -> None."""
    parts = [unquote(p) for p in urlsplit(path).path.split("/") if p]
    if len(parts) == 2 and parts[0] == "ocpp":
        station_id = parts[1]
    elif len(parts) == 1:
        station_id = parts[0]
    else:
        return None
    if not station_id or len(station_id) > MAX_STATION_ID or not station_id.isprintable():
        return None
    return station_id


def basic_credentials(headers: Headers) -> tuple[str, str] | None:
    header = headers.get("Authorization")
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def offered_subprotocols(headers: Headers) -> list[str]:
    return parse_offer(headers.get_all("Sec-WebSocket-Protocol"))


def normalise_offer(headers: Headers, offered: list[str], station_id: str) -> None:
    """Rewrite a malformed subprotocol offer (``",ocpp1.6"``, blanks) into a clean list.

    ``websockets`` parses the header itself after this check and refuses what it cannot
    parse; the rewrite is logged so a tolerated deviation is never silent.
    """
    clean = ", ".join(offered)
    raw = ", ".join(headers.get_all("Sec-WebSocket-Protocol"))
    if raw != clean:
        log.info("%s: malformed subprotocol offer %r read as %r", station_id, raw, clean)
        del headers["Sec-WebSocket-Protocol"]
        headers["Sec-WebSocket-Protocol"] = clean


class CsmsServer:
    """Owns the listening socket and the registry of live station connections."""

    def __init__(self, services: CsmsServices, *, credential_key: bytes | None = None) -> None:
        self.services = services
        self.connections: dict[str, StationConnection] = {}
        self._handlers: dict[str, dict[str, Handler[StationContext]]] = {
            "ocpp2.1": HANDLERS_21,
            "ocpp2.0.1": HANDLERS_201,
            "ocpp1.6": HANDLERS_16,
        }
        self._schemas = {name: SchemaSet(version) for name, version in SUPPORTED.items()}
        self._raw_schemas = {name: RequestSchemas(version) for name, version in SUPPORTED.items()}
        # station id -> deviation kind -> count of tolerated deviations (for metrics)
        self.tolerated: dict[str, Counter[str]] = {}
        # process-wide counters (Prometheus counters never go back when a station leaves):
        # subprotocol -> action or "error:<code>" -> count, shared by that version's dispatchers
        self.message_stats: dict[str, dict[str, int]] = {}
        self._running: set[StationConnection] = set()  # every connection still running
        self._rate_limited_closed = 0  # frames refused on connections that have ended
        self._server: Server | None = None
        # handshaken connections not yet closed: the cap's count (websockets'
        # ``Server.connections`` builds a new set of every connection, O(n) per handshake)
        self._open: set[ServerConnection] = set()
        # the station record each admitted handshake read, for its connection handler
        self._admitted: weakref.WeakKeyDictionary[ServerConnection, StationRecord] = (
            weakref.WeakKeyDictionary()
        )
        self._versions: dict[int, OcppVersion] = {}
        self.gc_pacer = gc_pacing.GcPacer()  # collections must not stall 10,000 stations
        self._automatic_gc = gc_pacing.AutomaticCollector()
        self._pacing: asyncio.Task[None] | None = None
        self._froze = False  # whether the pacing ever froze objects
        self.registry_watch = RegistryWatch(services.store, self.connections)
        # verified passwords remembered under the data directory's key (None: this process's)
        key = credential_key if credential_key is not None else os.urandom(32)
        # imported stations' passwords, hashed in the background after their first handshake
        self.pending_hashes = PendingHasher(
            key,
            services.store.replace_pending_hash,
            per_s=services.config.pending_hash_per_s,
            stored=self.registry_watch.rehashed,
        )
        self.credentials = CredentialChecker(
            key, services.store.remember_password, hash_later=self.pending_hashes.submit
        )
        self.loop_lag = LoopLagMonitor()
        self.throttle = AuthThrottle()
        # failed handshakes per registered station since start (unknown ids are not kept:
        # a spray of made-up ids costs no memory); shown on the stations page
        self.auth_failures: Counter[str] = Counter()
        # with processes sharing a PostgreSQL database: leases and calls between them
        self.cluster: Cluster | None = None
        self._watching: asyncio.Task[None] | None = None

    @property
    def rate_limited(self) -> int:
        """Frames refused by the rate limit since the CSMS started (all connections)."""
        return self._rate_limited_closed + sum(c.rate_limited for c in self._running)

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1])

    # a session's messages first: what the stations send most is compiled soonest
    SESSION_ACTIONS = (
        "BootNotification",
        "StatusNotification",
        "Heartbeat",
        "Authorize",
        "TransactionEvent",
        "MeterValues",
        "StartTransaction",
        "StopTransaction",
        "NotifyEVChargingNeeds",
    )

    def compile_schemas(self) -> None:
        """Compile the request and response validators of every action this server handles,
        in each OCPP version, now: each costs 20-200 ms of CPU on first use (more on a busy
        machine), which would otherwise hold every connection's messages on the event loop
        the first time a station sends that action. Meant for a thread of its own at start-up
        (``csms.app.start_csms``, ``compile_schemas``)."""
        for name, handlers in self._handlers.items():
            first = [action for action in self.SESSION_ACTIONS if action in handlers]
            self._schemas[name].compile(first)
        for name, handlers in self._handlers.items():
            self._schemas[name].compile(sorted(handlers))

    async def start(self) -> None:
        config = self.services.config
        self.loop_lag.start()
        self._pacing = asyncio.create_task(self._pace_gc(), name="gc-pacing")
        await self.registry_watch.start()
        if self.cluster is not None:
            await self.cluster.start()
        self._watching = asyncio.create_task(self.registry_watch.run(), name="registry-watch")
        self._server = await serve(
            self._run_connection,
            config.host,
            config.port,
            process_request=self._check_handshake,
            select_subprotocol=self._select_subprotocol,
            create_connection=StationWebsocket,  # freed by reference counting once closed
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            close_timeout=config.close_timeout,
            max_size=config.max_frame_bytes,
            compression=None,
            ssl=server_ssl_context(config),
            backlog=LISTEN_BACKLOG,
        )

    async def stop(self) -> None:
        if self._pacing is not None:
            self._pacing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pacing
            self._pacing = None
            self._automatic_gc.release()
            if self._froze:
                gc.unfreeze()  # hand the process's objects back (tests run many servers)
        if self._watching is not None:
            self._watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watching
            self._watching = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self.cluster is not None:
            await self.cluster.stop()
        await self.loop_lag.stop()
        await self.pending_hashes.close()
        await self.credentials.drain()
        self.credentials.close()

    async def _pace_gc(self) -> None:
        """Every tick, collect and freeze what was made since the last (``csms.gc_pacing``)."""
        pacer, loop = self.gc_pacer, asyncio.get_running_loop()
        while True:
            await asyncio.sleep(pacer.interval(len(self._open)))
            live = len(self._open)
            action = pacer.decide(live, loop.time())
            self._automatic_gc.follow(pacer.active)
            began = loop.time()
            gc_pacing.apply(action)
            self._froze = self._froze or action is not None
            if action is gc_pacing.GcAction.FULL:
                log.info(
                    "gc: full collection at %d connections took %.0f ms",
                    live,
                    (loop.time() - began) * 1000,
                )

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        version = select_version(list(offered))
        return None if version is None else Subprotocol(version.subprotocol)

    async def _check_handshake(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        station_id = station_id_from_path(request.path)
        if station_id is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "expected /ocpp/<stationId>\n")
        offered = offered_subprotocols(request.headers)
        if select_version(offered) is None:
            log.info("%s: refused: no supported subprotocol offered", station_id)
            return connection.respond(
                HTTPStatus.BAD_REQUEST,
                f"offer one of these subprotocols: {', '.join(SUPPORTED)}\n",
            )
        normalise_offer(request.headers, offered, station_id)
        config = self.services.config
        live = len(self._open)
        if station_id not in self.connections and live >= config.max_connections:
            log.warning("%s: refused: %d stations connected", station_id, live)
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "too many connections\n")
        station = await self.services.store.get_station(station_id)  # one read per handshake
        own = station.security_profile if station is not None else None
        profile = own or config.security_profile
        if profile >= 2 and connection.transport.get_extra_info("ssl_object") is None:
            return self._unauthorized(connection, station_id, f"profile {profile} needs TLS")
        if profile == 3:
            refusal = self._check_certificate(connection, station_id, station)
        else:
            credentials = basic_credentials(request.headers)
            if credentials is None or credentials[0] != station_id:
                why = "missing or malformed credentials"
                return self._unauthorized(connection, station_id, why)
            refusal = await self._check_password(connection, station_id, credentials[1], station)
        if refusal is None and station is not None:
            self._admitted[connection] = station
        return refusal

    async def _check_password(
        self,
        connection: ServerConnection,
        station_id: str,
        password: str,
        station: StationRecord | None,
    ) -> Response | None:
        """Basic auth with backoff: a throttled address gets 429; a throttled station id gets
        503 unless the password is one already verified or the address has no failures."""
        address = str((connection.remote_address or ("?",))[0])
        by_address, by_station = f"address:{address}", f"station:{station_id}"
        throttle = self.throttle
        remembered = self.credentials.is_remembered(station, password)
        wait = throttle.retry_after(by_address)
        status, kind = HTTPStatus.TOO_MANY_REQUESTS, "address"
        if not wait and throttle.failure_count(by_address) and not remembered:
            wait = throttle.retry_after(by_station)
            status, kind = HTTPStatus.SERVICE_UNAVAILABLE, "station"
        if wait:
            throttle.refused[("ocpp", kind)] += 1
            if station is not None:
                self.auth_failures[station_id] += 1
            log.warning(
                "security: auth_refused path=ocpp station=%s address=%s by=%s retry_after=%d",
                station_id,
                address,
                kind,
                wait,
            )
            response = connection.respond(status, "too many failed attempts\n")
            response.headers["Retry-After"] = str(wait)
            return response
        checker = self.credentials
        if checker.busy() and not remembered:
            wait = checker.retry_after()
            throttle.refused[("ocpp", "busy")] += 1
            log.info(
                "security: auth_busy path=ocpp station=%s address=%s queued=%d retry_after=%d",
                station_id,
                address,
                checker.queued,
                wait,
            )
            response = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "busy, retry later\n")
            response.headers["Retry-After"] = str(wait)
            return response
        if await checker.check(station_id, password, station):
            throttle.succeeded(by_address)
            throttle.succeeded(by_station)
            return None
        delay = max(throttle.failed(by_address), throttle.failed(by_station))
        throttle.failures["ocpp"] += 1
        if station is not None:
            self.auth_failures[station_id] += 1
        log.warning(
            "security: auth_failed path=ocpp station=%s address=%s failures=%d why=%s",
            station_id,
            address,
            throttle.failure_count(by_station),
            "unknown station" if station is None else "wrong password",
        )
        await asyncio.sleep(delay)
        return self._unauthorized(connection, station_id, "bad credentials")

    def _check_certificate(
        self, connection: ServerConnection, station_id: str, station: StationRecord | None
    ) -> Response | None:
        """Security profile 3: the verified client certificate names a registered station."""
        ssl_object = connection.transport.get_extra_info("ssl_object")
        peercert = ssl_object.getpeercert() if ssl_object is not None else None
        refusal = check_client_certificate(station_id, peercert)
        if refusal is not None:
            log.warning("%s: refused at handshake: %s", station_id, refusal.reason)
            return connection.respond(refusal.status, f"{refusal.status.phrase.lower()}\n")
        if station is None:
            return self._unauthorized(connection, station_id, "unknown station")
        return None

    def auth_standing(self, station_id: str) -> tuple[int, int]:
        """(failed or refused handshakes since start, seconds the id is still held back)."""
        held = self.throttle.retry_after(f"station:{station_id}")
        return self.auth_failures.get(station_id, 0), held

    def _unauthorized(self, connection: ServerConnection, station_id: str, why: str) -> Response:
        log.warning("%s: refused at handshake: %s", station_id, why)
        response = connection.respond(HTTPStatus.UNAUTHORIZED, "unauthorized\n")
        response.headers["WWW-Authenticate"] = 'Basic realm="v2g-bridge", charset="UTF-8"'
        return response

    async def _run_connection(self, websocket: ServerConnection) -> None:
        self._open.add(websocket)
        try:
            await self._serve_station(websocket)
        finally:
            self._open.discard(websocket)
            self.gc_pacer.closed()  # it leaves cycles behind (csms.gc_pacing)

    async def _serve_station(self, websocket: ServerConnection) -> None:
        station_id = station_id_from_path(websocket.request.path if websocket.request else "")
        subprotocol = websocket.subprotocol
        station = self._admitted.pop(websocket, None)
        if station_id is None or subprotocol not in SUPPORTED or station is None:
            await websocket.close(code=1002, reason="protocol not negotiated")
            return
        config = self.services.config
        tolerant = station.tolerance == "tolerant"
        deviations = self.tolerated.setdefault(station_id, Counter())
        dispatcher: Dispatcher[StationContext] = Dispatcher(
            version=SUPPORTED[subprotocol],
            handlers=self._handlers[subprotocol],
            schemas=self._schemas[subprotocol],
            validate_responses=config.validate_responses,
            tolerance=self._raw_schemas[subprotocol],
            tolerant=tolerant,
            deviations=deviations,
            clock=self.services.clock,
            stats=self.message_stats.setdefault(subprotocol, {}),
        )
        connection = StationConnection(
            websocket,
            StationContext(station_id, self.services, tolerant, deviations),
            dispatcher,
            call_timeout=config.call_timeout,
            rate_limit=TokenBucket(config.rate_limit_per_s, config.rate_limit_burst),
            pending_limit=PendingLimit(
                config.max_pending_frames, config.rate_limit_disconnect_after
            ),
            follow_ups=FOLLOW_UPS,
        )
        if self.cluster is not None:
            try:
                connection.lease_epoch = await self.cluster.take(station_id, str(subprotocol))
            except Exception as exc:  # no database: nothing this connection sends could be kept
                log.warning("%s: cannot take its lease: %s", station_id, exc)
                await websocket.close(code=1011, reason="database unavailable, retry later")
                return
        previous = self.connections.get(station_id)
        self.connections[station_id] = connection
        if previous is not None:
            log.info("%s: new connection replaces the old one", station_id)
            await self.services.log_connection(station_id, "replaced")
            await previous.close("replaced by a new connection")
        await self.services.log_connection(station_id, "connected", str(subprotocol))
        log.info("%s: connected (%s)", station_id, subprotocol)
        self._running.add(connection)
        try:
            await connection.run()
        finally:
            self._open.discard(websocket)  # the slot is free once the socket has closed
            self._running.discard(connection)
            self._rate_limited_closed += connection.rate_limited
            with contextlib.suppress(Exception):  # the last message before the close
                if connection.heard_once:
                    await connection.heard(force=True)
            if self.connections.get(station_id) is connection:
                del self.connections[station_id]
            if self.cluster is not None and connection.lease_epoch is not None:
                with contextlib.suppress(Exception):  # else it lapses in lease_seconds
                    await self.cluster.release(station_id, connection.lease_epoch)
            detail = f"code={websocket.close_code} reason={websocket.close_reason or ''}"
            sent = websocket.protocol.close_sent
            if sent is not None and websocket.protocol.close_rcvd is None:
                detail += f" sent={sent.code} {sent.reason}"  # closed by us, unanswered
            await self.services.log_connection(station_id, "disconnected", detail)
            log.info("%s: disconnected (%s)", station_id, detail)
