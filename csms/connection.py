"""One station's live websocket: the reader loop and CSMS-initiated calls (a thin adapter).

Frames are handled one at a time, in order, so a station's events are applied in the order
sent. CSMS-initiated calls are sent from other tasks and matched to answers by message id;
OCPP allows one outstanding call per direction, so they are serialised by a lock. Frames
beyond the station's rate limit are answered with a GenericError CALLERROR unprocessed, and a
station that keeps flooding is disconnected (close code 1008) while the others carry on.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from csms.context import StationContext
from csms.errors import CallErrorResponse, CallTimeout, GenericError, StationNotConnected
from csms.limits import TokenBucket, Verdict
from csms.ocpp.frames import CallError, CallResult, encode_call
from csms.ocpp.rpc import Dispatcher

log = logging.getLogger(__name__)


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
    ) -> None:
        self.websocket = websocket
        self.context = context
        self.dispatcher = dispatcher
        self.call_timeout = call_timeout
        self.rate_limit = rate_limit
        self.rate_limited = 0  # frames answered "rate limited" on this connection
        self._call_lock = asyncio.Lock()
        self._pending: dict[str, tuple[str, asyncio.Future[CallResult | CallError]]] = {}

    @property
    def station_id(self) -> str:
        return self.context.station_id

    @property
    def subprotocol(self) -> str:
        return self.dispatcher.version.subprotocol

    async def run(self) -> None:
        """Read and answer frames until the socket closes."""
        try:
            async for message in self.websocket:
                verdict = self._admit()
                if verdict is Verdict.DISCONNECT:
                    log.warning("%s: keeps flooding; disconnecting", self.station_id)
                    await self.websocket.close(code=1008, reason="message rate limit exceeded")
                    break
                if verdict is Verdict.LIMIT:
                    self.rate_limited += 1
                    inbound = self.dispatcher.refuse(
                        message,
                        GenericError("rate limited: slow down", {"reason": "rate limited"}),
                        station_id=self.station_id,
                    )
                else:
                    inbound = await self.dispatcher.handle(
                        self.context, message, station_id=self.station_id
                    )
                if inbound.response is not None:
                    self._resolve(inbound.response)
                if inbound.reply is not None:
                    await self.websocket.send(inbound.reply)
        except ConnectionClosed:
            pass
        finally:
            for _, future in self._pending.values():
                if not future.done():
                    future.set_exception(StationNotConnected(f"{self.station_id} disconnected"))

    def _admit(self) -> Verdict:
        if self.rate_limit is None:
            return Verdict.ACCEPT
        return self.rate_limit.take(asyncio.get_running_loop().time())

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
        return response.payload

    async def close(self, reason: str) -> None:
        await self.websocket.close(code=1000, reason=reason)
