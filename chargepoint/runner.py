"""The station's composition root: builds everything, owns the connection loop and shutdown.

Connection loop: connect (OCPP 2.0.1 randomised back-off between failures, ``backoff``) ->
BootNotification until Accepted -> StatusNotifications and queued-event replay ->
heartbeats at the CSMS's interval, until the link drops or a Reset asks for a reboot; then
again. Given several CSMS URLs (``fallback_urls``: several CSMS processes on one database),
a station that cannot connect to one (refused, closed, no answer in ``open_timeout``, no
answer to its boot) tries the next at once, and waits the back-off only after a whole round
failed; a lost link is retried where it was, after the back-off, then the others. Sessions
go on meanwhile; events not yet acknowledged wait in the offline queue and are sent on the
next connection, wherever it is. A session driver runs ``--sessions K`` sessions spread over
the EVSEs. In ``--exit`` mode the first error (a refused handshake, a Rejected boot, a
CALLERROR, an idToken not Accepted) ends the run.

Protocol timers (heartbeat, backoff, timeouts) are wall seconds; session timers (meter
interval, session length) are station seconds on the accelerated clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ocpp.v201 import call
from websockets.asyncio.client import ClientConnection

from chargepoint.backoff import Backoff
from chargepoint.client import StationClient
from chargepoint.clock import AcceleratedClock, Clock, Hold
from chargepoint.config import StationConfig
from chargepoint.connection import open_connection, station_url
from chargepoint.device_model import RETRY_VARIABLES, DeviceModel, default_variables
from chargepoint.errors import (
    CallErrorReceived,
    CallFailed,
    CallTimeout,
    ChargePointError,
    ConnectError,
    HandshakeRefused,
    NotConnected,
    Rejected,
)
from chargepoint.metering import MeterSource, SimulatedMeter
from chargepoint.payloads import boot_notification_call, security_event_call
from chargepoint.session_report import SessionListener
from chargepoint.sessions import run_session
from chargepoint.station import Station
from chargepoint.transaction import Evse

LOG = logging.getLogger(__name__)

FATAL_HTTP = (401, 403, 404)
# boot reason -> the critical security event a station reports once it is accepted (A04)
SECURITY_EVENTS = {"PowerUp": "StartupOfTheDevice", "RemoteReset": "ResetOrReboot"}


def default_start(config: StationConfig) -> datetime:
    """Where an accelerated station's clock starts: far enough back that its ``--sessions``
    end no later than now (a record from the future is one no auditor trusts). Connecting,
    booting, plug-in and authorization take no station time (the session driver holds the
    clock through them), so the sessions run back to back from the start, ``session_seconds``
    each at most; a minute per round is left for a wake-up the clock could not take out.
    A station at real speed, or one running without end, starts now."""
    now = datetime.now(UTC)
    if config.speed <= 1 or config.sessions < 1:
        return now
    rounds = -(-config.sessions // max(1, config.evses))
    return now - timedelta(seconds=rounds * (config.session_seconds + 60))


class StationRunner:
    """Runs one station until its sessions are done (``--exit``) or it is cancelled.

    ``station_class`` and ``client_class`` speak the OCPP version; ``runner_for`` picks the
    runner of ``config.ocpp_version``.
    """

    station_class: type[Station] = Station
    client_class: type[StationClient] = StationClient

    def __init__(
        self,
        config: StationConfig,
        *,
        clock: Clock | None = None,
        meters: Mapping[int, MeterSource] | None = None,
        rand: Callable[[], float] = random.random,
        on_session: SessionListener | None = None,
    ) -> None:
        self.config = config
        self.urls = tuple(
            station_url(url, config.station_id) for url in (config.url, *config.fallback_urls)
        )
        self._at = 0  # index in ``urls`` of the CSMS to connect to next
        self.failovers = 0  # moves to another CSMS URL
        self.clock = clock or AcceleratedClock(speed=config.speed, start=default_start(config))
        # the session driver's hold on the clock, one per EVSE, taken from the start:
        # connecting and booting take no station time (see ``drive_sessions``)
        self._holds = {n: Hold(self.clock) for n in range(1, config.evses + 1)}
        if config.sessions > 0:
            for hold in self._holds.values():
                hold.take()
        self._rand = rand
        self.errors: list[ChargePointError] = []
        self._fatal: asyncio.Event = asyncio.Event()
        backoff = config.backoff
        self._factory_retry = (
            math.ceil(backoff.wait_minimum),
            math.ceil(backoff.random_range),
            backoff.repeat_times,
        )
        device_model = DeviceModel(
            default_variables(
                station_id=config.station_id,
                evse_count=config.evses,
                evse_power_w=config.evse_power_w,
                tx_updated_interval=config.tx_updated_interval,
                aligned_interval=config.aligned_interval,
                retry_backoff=self._factory_retry,
            )
        )
        if config.password is not None:
            device_model.write("SecurityCtrlr", "BasicAuthPassword", config.password)
        self.station = self.station_class(
            config,
            clock=self.clock,
            device_model=device_model,
            meters=meters or {n: SimulatedMeter() for n in range(1, config.evses + 1)},
            new_transaction_id=lambda: uuid.uuid4().hex,
            on_error=self._on_error,
        )
        self.station.on_session = on_session
        self.connections = 0

    @property
    def url(self) -> str:
        """The CSMS endpoint the station is connected to, or connects to next."""
        return self.urls[self._at]

    def _next_url(self, why: object) -> None:
        if len(self.urls) > 1:
            self._at = (self._at + 1) % len(self.urls)
            self.failovers += 1
            LOG.info("%s: %s; trying %s", self.config.station_id, why, self.url)

    def backoff(self) -> Backoff:
        """The reconnect policy in force: the configured one (in fractions of a second if so
        configured) until the CSMS sets the OCPPCommCtrlr RetryBackOff* variables, then theirs."""
        model = self.station.device_model
        values = tuple(model.read_int("OCPPCommCtrlr", name) for name in RETRY_VARIABLES)
        if values == self._factory_retry:
            return self.config.backoff
        return Backoff(float(values[0]), float(values[1]), min(values[2], 32))

    def _on_error(self, error: ChargePointError) -> None:
        self.errors.append(error)
        if self.config.exit_when_done:
            self._fatal.set()

    async def run(self) -> int:
        """Run; 0 when every session completed cleanly (``--exit``), 1 after an error."""
        link_task = asyncio.create_task(self.connection_loop(), name="connection-loop")
        driver = asyncio.create_task(self.drive_sessions(), name="sessions")
        fatal = asyncio.create_task(self._fatal.wait(), name="fatal")
        waiting = {link_task, fatal} | ({driver} if self.config.exit_when_done else set())
        try:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for task in done & {link_task, driver}:
                if not task.cancelled() and (exc := task.exception()) is not None:
                    if not isinstance(exc, ChargePointError):
                        raise exc
                    self.errors.append(exc)
        finally:
            for task in (link_task, driver, fatal):
                task.cancel()
            await asyncio.gather(link_task, driver, fatal, return_exceptions=True)
            await self.station.shutdown()
        return 1 if self.errors else 0

    # sessions ---------------------------------------------------------------------------

    async def drive_sessions(self) -> None:
        """Run ``config.sessions`` sessions over the EVSEs; then wait until all events are acked."""
        numbers = itertools.count()

        async def worker(evse: Evse) -> None:
            # connecting, booting, plug-in and authorization take no station time: the first
            # EV arrives at the clock's start and each next one the instant the last one left
            hold = self._holds[evse.evse_id]
            try:
                while next(numbers) < self.config.sessions:
                    while True:
                        if self.station.boot_accepted and not self.station.online.is_set():
                            hold.give()  # a lost link: the sessions on other EVSEs go on
                        await self.station.online.wait()
                        if not evse.idle:  # e.g. a remote start's session: let it run
                            hold.give()
                            await asyncio.sleep(0.05)
                            continue
                        hold.take()
                        try:
                            done = await run_session(
                                self.station,
                                evse,
                                self.config.id_token,
                                seconds=self.config.session_seconds,
                                hold=hold,
                            )
                        except ChargePointError as exc:  # e.g. an idToken not Accepted
                            self.station.report(exc)  # fatal with --exit; else it is lost
                            break
                        if done:
                            break
                        hold.give()
                        await asyncio.sleep(0.05)
            finally:
                hold.give()

        await asyncio.gather(*(worker(e) for e in self.station.evses.values()))
        await self.station.drained()

    # connection -------------------------------------------------------------------------

    async def connection_loop(self) -> None:
        """Connect, serve, reconnect: forever, or until a fatal error in ``--exit`` mode.

        With ``--exit``, a refused handshake (401/403/404) is fatal at once, and so is being
        without a connection for ``connect_timeout`` seconds (at start or after a drop).
        """
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.config.connect_timeout
        attempt = 0
        tried = 0  # URLs that failed since the last back-off wait or connection
        reason = "PowerUp"
        while True:
            password = self.station.device_model.read("SecurityCtrlr", "BasicAuthPassword")
            try:
                ws = await open_connection(
                    self.url,
                    station_id=self.config.station_id,
                    password=password or None,
                    open_timeout=self.config.open_timeout,
                    tls=self.config.tls,
                    subprotocol=f"ocpp{self.config.ocpp_version}",
                )
            except ConnectError as exc:
                refused = isinstance(exc, HandshakeRefused) and exc.status in FATAL_HTTP
                too_long = loop.time() >= give_up_at
                if self.config.exit_when_done and (refused or too_long):
                    raise
                self._next_url(exc)
                tried += 1
                if tried < len(self.urls):
                    continue  # another CSMS may answer: no wait before trying it
                tried = 0
                delay = self.backoff().delay(attempt, self._rand())
                LOG.info("%s: %s; retrying in %.1f s", self.config.station_id, exc, delay)
                attempt += 1
                await asyncio.sleep(delay)
                continue
            self.connections += 1
            tried = 0
            outcome = await self._serve(ws, reason)
            give_up_at = loop.time() + self.config.connect_timeout
            reason = "RemoteReset" if outcome == "reboot" else "Unknown"
            if outcome == "reboot":
                attempt = 0
                continue
            # a link that never got past boot counts as a failed attempt; a lost one starts over
            attempt = attempt + 1 if outcome == "not-booted" else 0
            if outcome == "not-booted":
                self._next_url("no boot answer")
            await asyncio.sleep(self.backoff().delay(attempt, self._rand()))

    async def _serve(self, ws: ClientConnection, reason: str) -> str:
        """One connection's life: ended by a "reboot" (Reset), "lost", or "not-booted"."""
        client = self.client_class(self.station, ws, response_timeout=self.config.response_timeout)
        serving = asyncio.create_task(client.start(), name="ocpp-receive")
        heartbeat: asyncio.Task[None] | None = None
        self.station.reboot.clear()
        reboot = asyncio.create_task(self.station.reboot.wait(), name="reboot")
        try:
            booted = asyncio.create_task(self._boot(client, reason), name="boot")
            done, _ = await asyncio.wait({booted, serving}, return_when=asyncio.FIRST_COMPLETED)
            if booted not in done:
                booted.cancel()
                return "not-booted"
            if not booted.result():
                return "not-booted"
            await self.station.go_online(client)
            if reason in SECURITY_EVENTS:
                self.station.spawn(self._security_event(SECURITY_EVENTS[reason]), name="security")
            heartbeat = asyncio.create_task(self._heartbeats(client), name="heartbeat")
            await asyncio.wait({serving, reboot}, return_when=asyncio.FIRST_COMPLETED)
            return "reboot" if reboot.done() else "lost"
        finally:
            self.station.go_offline()
            client.closed.set()
            for task in (serving, reboot, heartbeat):
                if task is not None:
                    task.cancel()
            with contextlib.suppress(Exception):
                await ws.close()
            if self.station.reboot.is_set():
                self.station.boot_accepted = False
                self._reboot_evses()

    def _reboot_evses(self) -> None:
        """A reboot leaves no EV plugged in; availability settings persist (OCPP G03.FR.05)."""
        for evse in self.station.evses.values():
            if evse.transaction is None:
                evse.plugged = False

    def _boot_payload(self, reason: str) -> Any:
        """The BootNotification this runner's OCPP version sends."""
        return boot_notification_call(
            vendor=self.config.vendor,
            model=self.config.model,
            serial=self.config.station_id[:25],
            reason=reason,
        )

    async def _boot(self, client: StationClient, reason: str) -> bool:
        """BootNotification until Accepted; False if the link failed meanwhile."""
        payload = self._boot_payload(reason)
        while True:
            self.station.boot_requested.clear()
            try:
                result = await client.send(payload)
            except (CallTimeout, NotConnected):
                return False
            except CallFailed as exc:
                self.station.report(exc)
                return False
            interval = max(1, int(result.interval)) if result.interval else 60
            if result.status == "Accepted":
                self.station.device_model.write("OCPPCommCtrlr", "HeartbeatInterval", str(interval))
                return True
            if result.status == "Rejected":
                self.station.report(Rejected("BootNotification", "Rejected"))
            LOG.info(
                "%s: boot %s (%s), retrying in %s s", client.id, result.status, reason, interval
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.station.boot_requested.wait(), timeout=interval)

    async def _security_event(self, kind: str) -> None:
        try:
            await self.station.send(security_event_call(now=self.clock.now(), kind=kind))
        except CallErrorReceived as exc:
            self.station.report(exc)
        except (CallFailed, NotConnected):
            pass  # best effort: the link dropped

    async def _heartbeats(self, client: StationClient) -> None:
        """Heartbeat every HeartbeatInterval wall seconds (re-read each time: SetVariables)."""
        while True:
            interval = self.station.device_model.read_int("OCPPCommCtrlr", "HeartbeatInterval")
            await asyncio.sleep(interval)
            try:
                await client.send(call.Heartbeat())
            except CallTimeout:
                LOG.info("%s: heartbeat unanswered", self.config.station_id)
            except NotConnected:
                return
            except CallFailed as exc:
                self.station.report(exc)


def runner_for(config: StationConfig, **options: Any) -> StationRunner:
    """The runner speaking ``config.ocpp_version`` (imported here: those modules import this)."""
    if config.ocpp_version == "1.6":
        from chargepoint.v16.runner import StationRunner16

        return StationRunner16(config, **options)
    if config.ocpp_version == "2.1":
        from chargepoint.v21.runner import StationRunner21

        return StationRunner21(config, **options)
    return StationRunner(config, **options)
