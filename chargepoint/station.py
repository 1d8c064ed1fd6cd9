"""The station service: EVSEs, device model, meters and the offline queue behind one object.

Handlers and session runners talk to the CSMS only through ``Station.send`` (which goes to
the current ``Link`` or fails with NotConnected) and ``Station.submit`` (TransactionEvents,
which are queued while offline and replayed in order). Background work runs in supervised
tasks whose failures are reported, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ocpp.v201 import call

from chargepoint.charging_profiles import ChargingProfile, ProfileStore, Purpose
from chargepoint.clock import Clock
from chargepoint.config import StationConfig
from chargepoint.device_model import DeviceModel
from chargepoint.errors import (
    CallErrorReceived,
    CallFailed,
    ChargePointError,
    NotConnected,
    Rejected,
)
from chargepoint.ev_needs import charging_needs_call_201, ev_behind
from chargepoint.local_list import LocalList
from chargepoint.metering import (
    MeterRequest,
    MeterSource,
    ReadingContext,
    SigningMeterSource,
)
from chargepoint.offline_queue import OfflineQueue
from chargepoint.payloads import id_token_payload, status_notification_call, transaction_event_call
from chargepoint.session_report import SessionListener
from chargepoint.transaction import (
    EventType,
    Evse,
    IdToken,
    MeterSample,
    StoppedReason,
    TriggerReason,
    TxEvent,
    sample_reading,
)

LOG = logging.getLogger(__name__)

FollowUp = Callable[[], Coroutine[Any, Any, None]]


class Link(Protocol):
    """A live OCPP connection: send one call, get its result or a ChargePointError."""

    async def send(self, payload: Any) -> Any: ...


@dataclass
class StopRequest:
    """How a running session is asked to end, and why."""

    trigger: TriggerReason = TriggerReason.STOP_AUTHORIZED
    reason: StoppedReason = StoppedReason.LOCAL
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def fire(self, trigger: TriggerReason, reason: StoppedReason) -> None:
        """Ask once; the first reason given wins."""
        if not self.event.is_set():
            self.trigger, self.reason = trigger, reason
            self.event.set()


@dataclass
class Activity:
    """A long job the CSMS asked for (a log upload, a firmware update) and where it stands."""

    request_id: int
    status: str
    task: asyncio.Task[None] | None = None
    finished: bool = False  # its last status is set (and may still be on its way)

    @property
    def running(self) -> bool:
        return not self.finished and self.task is not None and not self.task.done()


class Station:
    """One simulated charging station, independent of any particular connection."""

    #: an EV whose needs were Accepted waits for its schedule (OCPP K15; ``wait_for_schedule``)
    schedule_follows_needs = True

    def __init__(
        self,
        config: StationConfig,
        *,
        clock: Clock,
        device_model: DeviceModel,
        meters: Mapping[int, MeterSource],
        new_transaction_id: Callable[[], str],
        on_error: Callable[[ChargePointError], None],
    ) -> None:
        self.config = config
        self.clock = clock
        self.device_model = device_model
        self.meters = dict(meters)
        self.evses = {n: Evse(n) for n in range(1, config.evses + 1)}
        self.queue = OfflineQueue()
        self.new_transaction_id = new_transaction_id
        self.online = asyncio.Event()
        self.reboot = asyncio.Event()
        self.boot_requested = asyncio.Event()
        self.boot_accepted = False
        self.reset_pending = False
        self.sessions_completed = 0
        self.on_session: SessionListener | None = None  # told of each ended session
        self._on_error = on_error
        self._link: Link | None = None
        self._flush_lock = asyncio.Lock()
        self._stops: dict[str, StopRequest] = {}
        self._needs_due: dict[str, int] = {}  # transaction id -> EVSE, needs not sent yet
        self._tasks: set[asyncio.Task[None]] = set()
        self.profiles = ProfileStore()  # SetChargingProfile (smart_charging)
        self.profile_timers: dict[int, asyncio.Task[None]] = {}  # next schedule change per EVSE
        # SetChargingProfiles accepted so far, and the count at each transaction's latest
        # TxProfile: what an EV waiting for its schedule watches
        self.profiles_accepted = 0
        self.tx_profile_at: dict[str, int] = {}
        self._profile_accepted = asyncio.Event()
        self.running_costs: dict[str, float] = {}  # transactionId -> CostUpdated / Updated
        self.total_costs: dict[str, float] = {}  # transactionId -> totalCost answering Ended
        self.local_list = LocalList()  # SendLocalList (housekeeping)
        self.log_upload: Activity | None = None  # GetLog (diagnostics)
        self.firmware_update: Activity | None = None  # UpdateFirmware (firmware)
        self.pending_keys: dict[str, Any] = {}  # certificate use -> key awaiting its certificate
        self.certificates: dict[str, str] = {}  # certificate use -> installed PEM chain

    @property
    def station_id(self) -> str:
        """The id the station connects and logs under."""
        return self.config.station_id

    # connection lifecycle -------------------------------------------------------------

    async def go_online(self, link: Link) -> None:
        """After an accepted boot: report every connector, then replay queued events."""
        self._link = link
        self.boot_accepted = True
        await self.send_all_status()  # before sessions see the station online
        self.online.set()
        await self.flush()

    def go_offline(self) -> None:
        """The connection is gone: from now on events are queued with offline=true."""
        self._link = None
        self.online.clear()

    async def send(self, payload: Any) -> Any:
        """Send one call on the current link (see ``client.StationClient.send``)."""
        link = self._link
        if link is None:
            raise NotConnected(f"{self.station_id}: offline, cannot send {type(payload).__name__}")
        return await link.send(payload)

    # supervision ------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
        """Run ``coro`` in a task the station keeps, reporting its failure if it fails."""
        task = asyncio.create_task(coro, name=f"{self.station_id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        if isinstance(exc, ChargePointError):
            self.report(exc)
        else:
            LOG.error("%s: task %s crashed", self.station_id, task.get_name(), exc_info=exc)
            self.report(ChargePointError(f"internal error in {task.get_name()}: {exc!r}"))

    def report(self, error: ChargePointError) -> None:
        """A call was refused or failed for good: log it and let the runner decide."""
        # with --exit the runner prints the error as its one last line; else it is logged here
        level = logging.INFO if self.config.exit_when_done else logging.WARNING
        LOG.log(level, "%s: %s", self.station_id, error)
        self._on_error(error)

    async def shutdown(self) -> None:
        """Cancel every background task (sessions included) and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # metering ---------------------------------------------------------------------------

    def sample(
        self,
        evse: Evse,
        context: ReadingContext,
        measurands_variable: str,
        *,
        starting: tuple[str, IdToken] | None = None,
        at: datetime | None = None,
    ) -> MeterSample:
        """Read ``evse``'s meter now (or at ``at``, a clock-aligned instant just passed) and
        keep the measurands the device model asks for.

        ``starting`` names the transaction (id, idToken) a Transaction.Begin reading is for,
        since the EVSE has no transaction yet when its first reading is taken.
        """
        now = self.clock.now() if at is None else at
        tx = evse.transaction
        transaction_id: str | None = None
        token: IdToken | None = None
        if tx is not None:
            transaction_id, token = tx.transaction_id, tx.id_token
        elif starting is not None:
            transaction_id, token = starting
        request = MeterRequest(
            now=now,
            context=context,
            transaction_id=transaction_id,
            id_token=None if token is None else token.id_token,
            aligned_interval_s=self.aligned_interval(),
            id_token_type=None if token is None else token.type,
        )
        reading = self.meters[evse.evse_id].read(request)
        measurands = self.device_model.read_list(
            "AlignedDataCtrlr" if context is ReadingContext.SAMPLE_CLOCK else "SampledDataCtrlr",
            measurands_variable,
        )
        return sample_reading(reading, now=now, context=context, measurands=measurands)

    def aligned_interval(self) -> int:
        """AlignedDataCtrlr.Interval in station seconds (0: no clock-aligned readings)."""
        return self.device_model.read_int("AlignedDataCtrlr", "Interval")

    def held_samples(self, evse: Evse, before: datetime | None = None) -> tuple[MeterSample, ...]:
        """Signed readings ``evse``'s meter took on its own (before ``before``) that no event
        has carried yet; each is handed over once, so the caller must send them."""
        meter = self.meters[evse.evse_id]
        if not isinstance(meter, SigningMeterSource):
            return ()
        measurands = self.device_model.read_list("AlignedDataCtrlr", "Measurands")
        return tuple(
            sample_reading(
                held.reading,
                now=held.at,
                context=ReadingContext.SAMPLE_CLOCK,
                measurands=measurands,
            )
            for held in meter.unsent(before)
        )

    # transaction events ---------------------------------------------------------------

    async def submit(self, event: TxEvent) -> None:
        """Queue ``event`` behind any unsent ones and try to send them all in order; once a
        Started event is through, the EV's charging needs follow it."""
        if event.event_type is EventType.STARTED:
            self._needs_due[event.transaction_id] = event.evse_id
        elif event.event_type is EventType.ENDED:
            self._needs_due.pop(event.transaction_id, None)
        self.queue.push(event, offline=not self.online.is_set())
        await self.flush()

    async def flush(self) -> None:
        """Send queued events, then the needs of transactions whose Started went through.

        A Started event may be queued (offline, or before the boot was accepted): the needs
        follow it whenever it is delivered, never before it.
        """
        await self._flush_events()
        if not self._needs_due or not self.online.is_set():
            return
        queued = {e.transaction_id for e in self.queue.pending()}
        for transaction_id in list(self._needs_due):
            if transaction_id in queued:
                continue
            # another flush (a session on another EVSE) may have taken it while this one waited
            evse_id = self._needs_due.pop(transaction_id, None)
            if evse_id is None:
                continue
            tx = self.evses[evse_id].transaction
            if tx is not None and tx.transaction_id == transaction_id:
                await self.send_charging_needs(evse_id)

    def charging_needs_call(self, evse_id: int) -> Any | None:
        """The NotifyEVChargingNeeds of the EV on ``evse_id`` in this station's OCPP version
        (2.0.1: departure and energy to its target); None without an EV model behind it."""
        ev = ev_behind(self.meters[evse_id])
        return None if ev is None else charging_needs_call_201(evse_id, ev, self.clock.now())

    async def send_charging_needs(self, evse_id: int) -> None:
        """NotifyEVChargingNeeds for the EV on ``evse_id``; best effort. A CSMS that does not
        implement the message (it is optional) is no error."""
        payload = self.charging_needs_call(evse_id)
        if payload is None:
            return
        before = self.profiles_accepted
        try:
            result = await self.send(payload)
        except CallErrorReceived as exc:
            if exc.code in ("NotImplemented", "NotSupported"):
                LOG.info("%s: the CSMS takes no charging needs: %s", self.station_id, exc)
            else:
                self.report(exc)
            return
        except (CallFailed, NotConnected) as exc:
            LOG.info("%s: charging needs of EVSE %s not sent: %s", self.station_id, evse_id, exc)
            return
        tx = self.evses[evse_id].transaction
        accepted = getattr(result, "status", None) == "Accepted"
        waits = self.schedule_follows_needs and self.config.schedule_wait > 0
        if accepted and tx is not None and waits:
            await self.wait_for_schedule(tx.transaction_id, self.config.schedule_wait, before)

    def profile_installed(self, profile: ChargingProfile) -> None:
        """Count an accepted SetChargingProfile (a TxProfile under its transaction)."""
        self.profiles_accepted += 1
        if profile.purpose is Purpose.TX and profile.transaction_id is not None:
            self.tx_profile_at[profile.transaction_id] = self.profiles_accepted
        self._profile_accepted.set()

    async def wait_for_schedule(self, transaction_id: str, seconds: float, after: int) -> bool:
        """Wait up to ``seconds`` (wall) for a TxProfile of ``transaction_id`` accepted after
        the ``after``-th profile (one sent before the EV's needs is not the schedule they ask).

        The EV negotiates its schedule before energy flows (ISO 15118: ChargeParameterDiscovery
        until the SECC has one); a session waiting here is inside its plug-in, so on a held
        clock it takes no station time. False when none came in time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.tx_profile_at.get(transaction_id, 0) <= after:
            left = deadline - loop.time()
            if left <= 0:
                LOG.info(
                    "%s: no schedule for %s in %.1f s", self.station_id, transaction_id, seconds
                )
                return False
            self._profile_accepted.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._profile_accepted.wait(), left)
        return True

    async def _flush_events(self) -> None:
        """Send queued events oldest first until the queue is empty or the link fails."""
        async with self._flush_lock:
            while (head := self.queue.peek()) is not None and self.online.is_set():
                try:
                    result = await self._send_event(head)
                except CallErrorReceived as exc:
                    self.queue.pop()  # resending a refused event cannot help
                    self.report(exc)
                    continue
                except (CallFailed, NotConnected) as exc:
                    LOG.info(
                        "%s: %s seqNo %s not sent: %s",
                        self.station_id,
                        head.event_type,
                        head.seq_no,
                        exc,
                    )
                    self.queue.mark_offline()
                    return
                self.queue.pop()
                self._event_answered(head, result)

    async def _send_event(self, event: TxEvent) -> Any:
        """Send one queued event as this version's message; returns the CSMS's answer."""
        return await self.send(transaction_event_call(event))

    def _event_answered(self, event: TxEvent, result: Any) -> None:
        """Act on a TransactionEventResponse once its event is off the queue."""
        self._note_cost(event, getattr(result, "total_cost", None))
        info = result.id_token_info
        if info is not None and info.get("status") != "Accepted":
            # E05 (StopTxOnInvalidId): a token the CSMS no longer accepts stops charging
            self.request_stop(
                event.transaction_id, TriggerReason.DEAUTHORIZED, StoppedReason.DE_AUTHORIZED
            )
            self.report(Rejected("TransactionEvent", str(info.get("status"))))

    def _note_cost(self, event: TxEvent, cost: float | None) -> None:
        """Keep the totalCost a TransactionEventResponse carried (final on Ended)."""
        if cost is None:
            return
        if event.event_type is EventType.ENDED:
            self.total_costs[event.transaction_id] = float(cost)
            LOG.info("%s: transaction %s cost %s", self.station_id, event.transaction_id, cost)
        else:
            self.running_costs[event.transaction_id] = float(cost)

    async def drained(self, poll: float = 0.02) -> None:
        """Wait until the CSMS acknowledged every queued event."""
        while len(self.queue):
            await asyncio.sleep(poll)
            if self.online.is_set() and len(self.queue) and not self._flush_lock.locked():
                await self.flush()

    # other station-initiated messages -------------------------------------------------

    async def notify(self, payload: Any) -> None:
        """Send a notification: a CALLERROR is reported, a lost link is not an error."""
        try:
            await self.send(payload)
        except CallErrorReceived as exc:
            self.report(exc)
        except (CallFailed, NotConnected):
            pass

    async def send_status(self, evse: Evse) -> None:
        """StatusNotification for ``evse``'s connector; skipped while offline."""
        self.device_model.write("EVSE", "AvailabilityState", str(evse.status), evse_id=evse.evse_id)
        if self._link is None:
            return
        try:
            await self.send(self._status_payload(evse))
        except CallErrorReceived as exc:
            self.report(exc)
        except (CallFailed, NotConnected) as exc:
            LOG.info("%s: status of EVSE %s not sent: %s", self.station_id, evse.evse_id, exc)

    def _status_payload(self, evse: Evse) -> Any:
        """This version's StatusNotification for ``evse``'s connector."""
        return status_notification_call(
            now=self.clock.now(),
            evse_id=evse.evse_id,
            connector_id=evse.connector_id,
            status=evse.status,
        )

    async def send_all_status(self) -> None:
        """StatusNotification for every connector (after boot, or when triggered)."""
        for evse in self.evses.values():
            await self.send_status(evse)

    async def authorize(self, token: IdToken) -> None:
        """Authorize ``token``; raises Rejected unless the CSMS says Accepted."""
        result = await self.send(call.Authorize(id_token=id_token_payload(token)))
        status = result.id_token_info.get("status")
        if status != "Accepted":
            raise Rejected(f"Authorize {token.id_token}", str(status))

    # session control --------------------------------------------------------------------

    def register_stop(self, transaction_id: str) -> StopRequest:
        """Make a running transaction stoppable by id (remote stop, reset)."""
        request = StopRequest()
        self._stops[transaction_id] = request
        return request

    def forget_stop(self, transaction_id: str) -> None:
        """The transaction ended: it can no longer be stopped."""
        self._stops.pop(transaction_id, None)

    def request_stop(
        self, transaction_id: str, trigger: TriggerReason, reason: StoppedReason
    ) -> bool:
        """Ask the session running ``transaction_id`` to end; False if there is none."""
        request = self._stops.get(transaction_id)
        if request is None:
            return False
        request.fire(trigger, reason)
        return True

    def running_transactions(self) -> list[str]:
        """Ids of transactions under way, by EVSE."""
        return [e.transaction.transaction_id for e in self.evses.values() if e.transaction]
