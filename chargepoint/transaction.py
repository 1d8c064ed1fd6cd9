"""The EVSE, its connector and its transaction (OCPP 2.0.1 part E, Transactions): a pure core.

An ``Evse`` knows whether an EV is plugged in, whether it is operative, and the transaction
under way; each transaction step returns the ``TxEvent`` to send, numbered by the
transaction's own ``seqNo`` counter (0, 1, 2, ...). No I/O, no clock: callers pass ``now``
and the meter samples.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from chargepoint.errors import StateError
from chargepoint.metering import MeterReading, ReadingContext, SignedMeterValue


class ConnectorStatus(StrEnum):
    """ConnectorStatusEnumType values this station reports."""

    AVAILABLE = "Available"
    OCCUPIED = "Occupied"
    UNAVAILABLE = "Unavailable"


class ChargingState(StrEnum):
    """ChargingStateEnumType."""

    CHARGING = "Charging"
    EV_CONNECTED = "EVConnected"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    IDLE = "Idle"


class EventType(StrEnum):
    """TransactionEventEnumType."""

    STARTED = "Started"
    UPDATED = "Updated"
    ENDED = "Ended"


class TriggerReason(StrEnum):
    """TriggerReasonEnumType values this station uses."""

    AUTHORIZED = "Authorized"
    REMOTE_START = "RemoteStart"
    METER_VALUE_PERIODIC = "MeterValuePeriodic"
    METER_VALUE_CLOCK = "MeterValueClock"
    STOP_AUTHORIZED = "StopAuthorized"
    REMOTE_STOP = "RemoteStop"
    EV_DEPARTED = "EVDeparted"
    TRIGGER = "Trigger"
    RESET_COMMAND = "ResetCommand"
    ABNORMAL_CONDITION = "AbnormalCondition"
    DEAUTHORIZED = "Deauthorized"


class StoppedReason(StrEnum):
    """ReasonEnumType values this station uses."""

    LOCAL = "Local"
    REMOTE = "Remote"
    EV_DISCONNECTED = "EVDisconnected"
    IMMEDIATE_RESET = "ImmediateReset"
    REBOOT = "Reboot"
    OTHER = "Other"
    DE_AUTHORIZED = "DeAuthorized"


@dataclass(frozen=True)
class IdToken:
    """An idToken as presented by the driver (default type: an RFID card)."""

    id_token: str
    type: str = "ISO14443"


@dataclass(frozen=True)
class SampledValue:
    """One measured quantity, already in the unit OCPP expects (Wh, W, Percent)."""

    value: int
    measurand: str
    context: ReadingContext
    unit: str
    signed: SignedMeterValue | None = None


@dataclass(frozen=True)
class MeterSample:
    """All values read at one instant."""

    timestamp: datetime
    values: tuple[SampledValue, ...]


def sample_reading(
    reading: MeterReading, *, now: datetime, context: ReadingContext, measurands: tuple[str, ...]
) -> MeterSample:
    """Turn a meter reading into the sampled values ``measurands`` asks for, in that order.

    A signed record rides on the import register, the value it certifies; the register is
    reported for it even when ``measurands`` leaves it out, so no record is ever dropped.
    Power is split by sign into Import and Export; SoC appears only when the EV reports one.
    """
    available: dict[str, tuple[int, str, SignedMeterValue | None]] = {
        "Energy.Active.Import.Register": (reading.import_wh, "Wh", reading.signed),
        "Energy.Active.Export.Register": (reading.export_wh, "Wh", None),
        "Power.Active.Import": (max(reading.power_w, 0), "W", None),
        "Power.Active.Export": (max(-reading.power_w, 0), "W", None),
    }
    if reading.soc is not None:
        available["SoC"] = (reading.soc, "Percent", None)
    names = list(measurands)
    if reading.signed is not None and "Energy.Active.Import.Register" not in names:
        names.insert(0, "Energy.Active.Import.Register")
    values = tuple(
        SampledValue(value, name, context, unit, signed)
        for name in names
        if name in available
        for value, unit, signed in (available[name],)
    )
    return MeterSample(now, values)


@dataclass(frozen=True)
class Transaction:
    """A transaction under way on one EVSE; ``next_seq_no`` numbers its next event."""

    transaction_id: str
    evse_id: int
    connector_id: int
    id_token: IdToken
    started_at: datetime
    charging_state: ChargingState
    next_seq_no: int = 0
    remote_start_id: int | None = None


@dataclass(frozen=True)
class TxEvent:
    """One TransactionEvent as the station produced it (``offline`` set if it could not be sent)."""

    event_type: EventType
    timestamp: datetime
    trigger_reason: TriggerReason
    seq_no: int
    transaction_id: str
    evse_id: int
    connector_id: int
    charging_state: ChargingState | None = None
    id_token: IdToken | None = None
    remote_start_id: int | None = None
    stopped_reason: StoppedReason | None = None
    meter: tuple[MeterSample, ...] = ()
    offline: bool = False


class Evse:
    """One EVSE with one connector: plug state, availability and the current transaction."""

    def __init__(self, evse_id: int, connector_id: int = 1) -> None:
        self.evse_id = evse_id
        self.connector_id = connector_id
        self.plugged = False
        self.operative = True
        self.inoperative_pending = False
        self.transaction: Transaction | None = None

    @property
    def status(self) -> ConnectorStatus:
        """The connector status to report: Unavailable wins only once no transaction runs."""
        if self.transaction is not None:
            return ConnectorStatus.OCCUPIED
        if not self.operative:
            return ConnectorStatus.UNAVAILABLE
        return ConnectorStatus.OCCUPIED if self.plugged else ConnectorStatus.AVAILABLE

    @property
    def idle(self) -> bool:
        """True if a new session could start here now."""
        return self.operative and self.transaction is None and not self.plugged

    def plug_in(self) -> None:
        """An EV's cable is connected."""
        if self.plugged:
            raise StateError(f"EVSE {self.evse_id}: already plugged in")
        if not self.operative:
            raise StateError(f"EVSE {self.evse_id}: inoperative")
        self.plugged = True

    def unplug(self) -> None:
        """The cable is removed; a running transaction must have ended first."""
        if self.transaction is not None:
            raise StateError(f"EVSE {self.evse_id}: transaction still running")
        self.plugged = False

    def set_operative(self, operative: bool) -> bool:
        """Apply ChangeAvailability; False means 'Scheduled' (after the running transaction)."""
        if operative:
            self.operative = True
            self.inoperative_pending = False
            return True
        if self.transaction is not None:
            self.inoperative_pending = True
            return False
        self.operative = False
        return True

    def begin(
        self,
        *,
        now: datetime,
        transaction_id: str,
        id_token: IdToken,
        trigger: TriggerReason,
        meter: MeterSample,
        remote_start_id: int | None = None,
    ) -> TxEvent:
        """Start a transaction: the Started event, seqNo 0."""
        if self.transaction is not None:
            raise StateError(f"EVSE {self.evse_id}: a transaction is already running")
        if not self.operative:
            raise StateError(f"EVSE {self.evse_id}: inoperative")
        self.plugged = True
        self.transaction = Transaction(
            transaction_id=transaction_id,
            evse_id=self.evse_id,
            connector_id=self.connector_id,
            id_token=id_token,
            started_at=now,
            charging_state=ChargingState.CHARGING,
            remote_start_id=remote_start_id,
        )
        return self._event(
            EventType.STARTED,
            now,
            trigger,
            meter,
            id_token=id_token,
            remote_start_id=remote_start_id,
        )

    def update(
        self,
        *,
        now: datetime,
        trigger: TriggerReason,
        meter: MeterSample | None,
        charging_state: ChargingState | None = None,
        earlier: tuple[MeterSample, ...] = (),
    ) -> TxEvent:
        """An Updated event: periodic samples, a trigger, or a charging state change.

        ``earlier`` are samples taken before ``meter`` and not sent yet (held signed readings).
        """
        tx = self._running()
        if charging_state is not None:
            self.transaction = replace(tx, charging_state=charging_state)
        return self._event(EventType.UPDATED, now, trigger, meter, earlier=earlier)

    def end(
        self,
        *,
        now: datetime,
        trigger: TriggerReason,
        reason: StoppedReason,
        meter: MeterSample,
        earlier: tuple[MeterSample, ...] = (),
    ) -> TxEvent:
        """Stop the transaction: the Ended event; a scheduled Inoperative takes effect."""
        self._running()
        state = ChargingState.EV_CONNECTED if self.plugged else ChargingState.IDLE
        self.transaction = replace(self._running(), charging_state=state)
        event = self._event(
            EventType.ENDED, now, trigger, meter, stopped_reason=reason, earlier=earlier
        )
        self.transaction = None
        if self.inoperative_pending:
            self.inoperative_pending = False
            self.operative = False
        return event

    def _running(self) -> Transaction:
        if self.transaction is None:
            raise StateError(f"EVSE {self.evse_id}: no transaction running")
        return self.transaction

    def _event(
        self,
        event_type: EventType,
        now: datetime,
        trigger: TriggerReason,
        meter: MeterSample | None,
        *,
        id_token: IdToken | None = None,
        remote_start_id: int | None = None,
        stopped_reason: StoppedReason | None = None,
        earlier: tuple[MeterSample, ...] = (),
    ) -> TxEvent:
        tx = self._running()
        self.transaction = replace(tx, next_seq_no=tx.next_seq_no + 1)
        return TxEvent(
            event_type=event_type,
            timestamp=now,
            trigger_reason=trigger,
            seq_no=tx.next_seq_no,
            transaction_id=tx.transaction_id,
            evse_id=self.evse_id,
            connector_id=self.connector_id,
            charging_state=tx.charging_state,
            id_token=id_token,
            remote_start_id=remote_start_id,
            stopped_reason=stopped_reason,
            meter=earlier + (() if meter is None else (meter,)),
        )
