"""One station's live websocket: the reader loop and CSMS-initiated calls (a thin adapter).

Frames are handled one at a time, in order, so a station's events are applied in the order
sent. CSMS-initiated calls are sent from other tasks and matched to answers by message id;
OCPP allows one outstanding call per direction, so they are serialised by a lock.

Limits (``csms.limits``): a reader task takes frames off the socket and queues them for the
worker that answers them in order; the worker waits for the station's rate-limit token first
(throttling). A station with too many frames unanswered is answered "rate limited" at once by
the reader, and disconnected (close code 1008) if it keeps on; the others carry on.

Follow-ups: once a station's call has been answered without error, the follow-up registered
for its action (``csms.evse_discovery``: asking for the EVSE limits after BootNotification)
runs as its own task, so that its calls never wait inside a handler; the tasks end with the
connection, and a follow-up that fails is logged.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from csms.context import StationContext
from csms.errors import CallErrorResponse, CallTimeout, GenericError, StationNotConnected
from csms.limits import PendingLimit, TokenBucket, Verdict
from csms.ocpp.frames import CallError, CallResult, encode_call
from csms.ocpp.rpc import Dispatcher, Inbound
from csms.sent_profiles import SentProfiles

log = logging.getLogger(__name__)

HEARD_EVERY_S = 15.0  # how often a talking station's "last heard" is written at most


class StationConnection:
    """A connected station: owns its websocket, dispatcher and pending outbound call."""

    def __init__(
        self,
        websocket: ServerConnection,
        context: StationContext,
        dispatcher: Dispatcher[StationContext],
        *,
        call_timeout: float,
        rate_limit: TokenBucket | None = None,
        pending_limit: PendingLimit | None = None,
        follow_ups: Mapping[str, Callable[[StationConnection], Awaitable[None]]] | None = None,
    ) -> None:
        self.websocket = websocket
        self.context = context
        self.dispatcher = dispatcher
        self.call_timeout = call_timeout
        self.rate_limit = rate_limit
        self.pending_limit = pending_limit
        self.throttled = 0  # frames delayed for the rate limit
        self.rate_limited = 0  # frames refused as a flood ("rate limited")
        self._unanswered = 0  # frames read but not yet answered
        self._closing = False
        self._call_lock = asyncio.Lock()
        self._pending: dict[str, tuple[str, asyncio.Future[CallResult | CallError]]] = {}
        self._heard_at: float | None = None  # loop time "last heard" was last stored
        self.follow_ups = follow_ups or {}
        self._follow_up_tasks: set[asyncio.Task[None]] = set()
        # the epoch of this connection's lease when CSMS processes share a database
        # (``csms.cluster``); None: no lease, or it was taken by another connection
        self.lease_epoch: int | None = None

    @property
    def station_id(self) -> str:
        return self.context.station_id

    @property
    def sent_profiles(self) -> SentProfiles:
        """What the station accepted on this connection (``csms.sent_profiles``)."""
        return self.context.sent_profiles

    @property
    def subprotocol(self) -> str:
        return self.dispatcher.version.subprotocol

    async def run(self) -> None:
        """Read frames until the socket closes; a worker answers them in order."""
        queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        worker = asyncio.create_task(self._answer_in_order(queue))
        try:
            async for message in self.websocket:
                verdict = self._admit()
                if verdict is Verdict.ACCEPT:
                    self._unanswered += 1
                    queue.put_nowait(message)
                    continue
                if verdict is Verdict.DISCONNECT:
                    log.warning("%s: keeps flooding; disconnecting", self.station_id)
                    await self.websocket.close(code=1008, reason="message rate limit exceeded")
                    break
                self.rate_limited += 1
                refusal = GenericError("rate limited: slow down", {"reason": "rate limited"})
                await self._deliver(
                    self.dispatcher.refuse(message, refusal, station_id=self.station_id)
                )
        except ConnectionClosed:
            pass
        finally:
            # Frames already received are still handled (a station may never reconnect);
            # their answers cannot be sent, so the station resends whatever it still needs.
            self._closing = True
            queue.put_nowait(None)
            try:
                await worker
            except asyncio.CancelledError:
                worker.cancel()
                raise
            finally:
                for task in self._follow_up_tasks:
                    task.cancel()
                for _, future in self._pending.values():
                    if not future.done():
                        future.set_exception(StationNotConnected(f"{self.station_id} disconnected"))

    @property
    def heard_once(self) -> bool:
        """True once a message of this connection has been received."""
        return self._heard_at is not None

    async def heard(self, *, force: bool = False) -> None:
        """Store "last heard" (any message counts), at most once per ``HEARD_EVERY_S``."""
        now = asyncio.get_running_loop().time()
        if not force and self._heard_at is not None and now - self._heard_at < HEARD_EVERY_S:
            return
        self._heard_at = now
        services = self.context.services
        await services.store.touch_station(self.station_id, services.now_text())

    async def _answer_in_order(self, queue: asyncio.Queue[str | bytes | None]) -> None:
        while True:
            message = await queue.get()
            if message is None:
                return
            await self.heard()
            try:
                if not self._closing:
                    await self._throttle()
                inbound = await self.dispatcher.handle(
                    self.context, message, station_id=self.station_id
                )
                await self._deliver(inbound)
                self._follow_up(inbound)
            except ConnectionClosed:
                pass  # the answer is lost; the station resends what was not answered
            except Exception:  # the Dispatcher answers everything; never let the worker die
                log.exception("%s: frame could not be answered", self.station_id)
            finally:
                self._unanswered -= 1

    def _follow_up(self, inbound: Inbound) -> None:
        """Start the follow-up of a call answered without error, if its action has one."""
        if inbound.error_code is not None or inbound.action is None or self._closing:
            return
        follow_up = self.follow_ups.get(inbound.action)
        if follow_up is None:
            return
        task = asyncio.create_task(self._run_follow_up(inbound.action, follow_up(self)))
        self._follow_up_tasks.add(task)
        task.add_done_callback(self._follow_up_tasks.discard)

    async def _run_follow_up(self, action: str, work: Awaitable[None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: follow-up of %s failed", self.station_id, action)

    async def _deliver(self, inbound: Inbound) -> None:
        if inbound.response is not None:
            self._resolve(inbound.response)
        if inbound.reply is not None:
            await self.websocket.send(inbound.reply)

    def _admit(self) -> Verdict:
        if self.pending_limit is None:
            return Verdict.ACCEPT
        return self.pending_limit.admit(self._unanswered)

    async def _throttle(self) -> None:
        if self.rate_limit is None:
            return
        delay = self.rate_limit.reserve(asyncio.get_running_loop().time())
        if delay > 0:
            self.throttled += 1
            await asyncio.sleep(delay)

    def _resolve(self, response: CallResult | CallError) -> None:
        entry = self._pending.get(response.message_id)
        if entry is None:
            log.warning("%s: answer to unknown call %s", self.station_id, response.message_id)
            return
        _, future = entry
        if not future.done():
            future.set_result(response)

    async def call(
        self, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send a CALL and return the station's CALLRESULT payload (validated).

        Raises CallTimeout, CallErrorResponse or StationNotConnected; never returns None.
        """
        schemas = self.dispatcher.schemas
        schemas.validate_request(action, payload)
        async with self._call_lock:
            message_id = str(uuid.uuid4())
            future: asyncio.Future[CallResult | CallError] = (
                asyncio.get_running_loop().create_future()
            )
            self._pending[message_id] = (action, future)
            try:
                try:
                    await self.websocket.send(encode_call(message_id, action, payload))
                except ConnectionClosed:
                    raise StationNotConnected(f"{self.station_id} is not connected") from None
                try:
                    response = await asyncio.wait_for(future, timeout or self.call_timeout)
                except TimeoutError:
                    log.warning("%s: %s timed out", self.station_id, action)
                    raise CallTimeout(f"{self.station_id}: {action} timed out") from None
            finally:
                self._pending.pop(message_id, None)
        if isinstance(response, CallError):
            log.warning("%s: %s answered %s", self.station_id, action, response.code)
            raise CallErrorResponse(self.station_id, action, response.code, response.description)
        schemas.validate_response(action, response.payload)
        self.sent_profiles.observe(action, payload, response.payload)
        return response.payload

    async def close(self, reason: str) -> None:
        await self.websocket.close(code=1000, reason=reason)
