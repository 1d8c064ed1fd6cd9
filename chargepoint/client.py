"""The OCPP 2.0.1 client: ``ocpp.v201.ChargePoint`` with thin handlers and one outbound helper.

Handlers convert their arguments and call one function of a functional-block module, which
returns the answer and maybe a follow-up (the triggered message, the remote session). The
``answering`` wrapper parks the follow-up under the call's unique id; the matching ``@after``
hook starts it, so it runs after the answer went out and never inside the handler. Station
errors become CALLERRORs in ``answering`` (through ``to_call_error``) and nowhere else.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import (
    FormationViolationError,
    FormatViolationError,
    GenericError,
    InternalError,
    NotImplementedError,
    NotSupportedError,
    OCPPError,
    PropertyConstraintViolationError,
)
from ocpp.messages import Call, MessageType, unpack, validate_payload
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint
from ocpp.v201.enums import Action
from websockets.exceptions import ConnectionClosed

from chargepoint import (
    availability,
    certificates,
    diagnostics,
    housekeeping,
    provisioning,
    remote_control,
    smart_charging,
)
from chargepoint.errors import (
    CallErrorReceived,
    CallFailed,
    CallTimeout,
    ChargePointError,
    NotConnected,
    StateError,
)
from chargepoint.firmware import update_firmware
from chargepoint.payloads import (
    as_time,
    charging_profile_from,
    criteria_from,
    get_requests,
    id_token_from,
    set_requests,
)
from chargepoint.station import FollowUp, Station

LOG = logging.getLogger(__name__)


def to_call_error(error: Exception) -> OCPPError:
    """The one mapping from station errors to OCPP CALLERRORs (no tracebacks on the wire)."""
    if isinstance(error, OCPPError):
        return error
    if isinstance(error, StateError):
        return GenericError(description=str(error)[:255])
    if isinstance(error, ChargePointError):
        return InternalError(description=str(error)[:255])
    if isinstance(error, ValueError):  # a schema-valid field whose value does not parse
        return PropertyConstraintViolationError(description=str(error)[:255])
    return InternalError(description=f"unexpected {type(error).__name__}")


Answer = tuple[Any, FollowUp | None]
Handler = Callable[..., Answer]


def unserved_error(version: str, action: str) -> OCPPError:
    """The CALLERROR for a request with no handler: NotImplemented for an action of the
    version, NotSupported for one it does not define."""
    from ocpp.v16.enums import Action as Action16
    from ocpp.v21.enums import Action as Action21

    actions: type[Any] = {"1.6": Action16, "2.1": Action21}.get(version, Action)
    try:
        actions(action)
    except ValueError:
        return NotSupportedError(description=f"{action} is not an OCPP {version} action")
    return NotImplementedError(description=f"{action} is not implemented by this station")


def out_of_range_error(version: str, action: str) -> OCPPError:
    """The CALLERROR for a request holding a number too large to check against its schema
    (``1e27`` against ``multipleOf 0.1`` overflows the library's decimal check): 1.6 names
    it FormationViolation, later versions FormatViolation."""
    error = FormationViolationError if version == "1.6" else FormatViolationError
    return error(description=f"{action}: a number is too large to be checked")


class OneLineLog(logging.LoggerAdapter):
    """The library's logger with its tracebacks cut to one line: a request the station
    answers with a CALLERROR is logged once, never as a stack trace."""

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs.pop("exc_info", None)
        error = sys.exc_info()[1]
        self.info(f"{msg}: %s", *args, repr(error), **kwargs)


def answering(handler: Handler) -> Callable[..., Any]:
    """Wrap an ``@on`` handler: map its errors to CALLERRORs, park its follow-up, return the
    result dataclass. ``functools.wraps`` keeps the signature the library inspects."""

    @functools.wraps(handler)
    def inner(self: StationClient, *args: Any, **kwargs: Any) -> Any:
        try:
            result, follow_up = handler(self, *args, **kwargs)
        except Exception as exc:
            raise to_call_error(exc) from exc
        if follow_up is not None:
            self._follow_ups[kwargs["call_unique_id"]] = follow_up
        return result

    return inner


class StationClient(ChargePoint):
    """One live connection of a ``Station`` to the CSMS."""

    def __init__(
        self, station: Station, connection: Any, *, response_timeout: float = 30.0
    ) -> None:
        super().__init__(
            station.station_id,
            connection,
            response_timeout=response_timeout,
            logger=OneLineLog(logging.getLogger("ocpp"), {}),
        )
        self.station = station
        self.closed = asyncio.Event()
        self._follow_ups: dict[str, FollowUp] = {}

    # outbound ---------------------------------------------------------------------------

    async def send(self, payload: Any) -> Any:
        """Send one call and return its result.

        Raises CallErrorReceived for a CALLERROR (or a schema-invalid answer), CallTimeout
        when no answer comes in time or the link drops meanwhile, NotConnected if closed.
        """
        action = type(payload).__name__
        if self.closed.is_set():
            raise NotConnected(f"{self.id}: connection closed, {action} not sent")
        checking = self.station.config.check_schemas
        if checking:
            await self._check_outbound(action, payload)
        call = asyncio.ensure_future(
            self.call(payload, suppress=False, skip_schema_validation=not checking)
        )
        closed = asyncio.ensure_future(self.closed.wait())
        try:
            done, _ = await asyncio.wait({call, closed}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            call.cancel()
            raise
        finally:
            closed.cancel()
        if call not in done:
            call.cancel()
            raise CallTimeout(f"{self.id}: connection lost while waiting for {action}")
        try:
            return call.result()
        except OCPPError as exc:
            LOG.info("%s: %s answered with %s", self.id, action, exc.code)
            raise CallErrorReceived(action, exc.code, exc.description) from exc
        except TimeoutError as exc:
            raise CallTimeout(f"{self.id}: no answer to {action} in time") from exc
        except ConnectionClosed as exc:
            raise CallTimeout(f"{self.id}: connection lost sending {action}") from exc

    async def _check_outbound(self, action: str, payload: Any) -> None:
        """Validate our own payload first, so a CALLERROR can only mean the CSMS refused."""
        body = remove_nones(snake_to_camel_case(serialize_as_dict(payload)))
        try:
            await validate_payload(Call("local-check", action, body), self._ocpp_version)
        except OCPPError as exc:
            raise CallFailed(f"{self.id}: own {action} is not schema-valid: {exc}") from exc

    # inbound ----------------------------------------------------------------------------

    async def route_message(self, raw_msg: str) -> None:
        """The library's routing, except that a request without a handler (or one that fails
        validation) is answered with its CALLERROR and one log line, on every version."""
        try:
            msg = unpack(raw_msg)
        except OCPPError as exc:
            LOG.info("%s: unusable frame dropped: %s", self.id, exc)
            return
        if msg.message_type_id != MessageType.Call:
            self._response_queue.put_nowait(msg)
            return
        error: OCPPError | None = None
        if "_on_action" not in self.route_map.get(msg.action, {}):
            error = unserved_error(self._ocpp_version, msg.action)
        else:
            try:
                await self._handle_call(msg)
            except OCPPError as exc:
                error = exc
            except ArithmeticError:
                error = out_of_range_error(self._ocpp_version, msg.action)
        if error is not None:
            LOG.info("%s: %s answered %s: %s", self.id, msg.action, error.code, error.description)
            await self._send(msg.create_call_error(error).to_json())

    def _run_parked(self, unique_id: str, action: str) -> None:
        """Start the follow-up parked by the handler, now that its answer is on the wire."""
        follow_up = self._follow_ups.pop(unique_id, None)
        if follow_up is not None:
            self.station.spawn(follow_up(), name=f"after-{action}")

    @on(Action.get_variables)
    @answering
    def on_get_variables(
        self, get_variable_data: list[dict[str, Any]], call_unique_id: str, **_: Any
    ) -> Answer:
        requests = get_requests(get_variable_data)
        return provisioning.get_variables(self.station, requests), None

    @on(Action.set_variables)
    @answering
    def on_set_variables(
        self, set_variable_data: list[dict[str, Any]], call_unique_id: str, **_: Any
    ) -> Answer:
        requests = set_requests(set_variable_data)
        return provisioning.set_variables(self.station, requests), None

    @on(Action.get_base_report)
    @answering
    def on_get_base_report(
        self, request_id: int, report_base: str, call_unique_id: str, **_: Any
    ) -> Answer:
        return provisioning.get_base_report(self.station, request_id, report_base)

    @after(Action.get_base_report)
    def after_get_base_report(self, call_unique_id: str, **_: Any) -> None:
        self._run_parked(call_unique_id, "GetBaseReport")

    @on(Action.reset)
    @answering
    def on_reset(
        self, type: str, call_unique_id: str, evse_id: int | None = None, **_: Any
    ) -> Answer:
        return provisioning.reset(self.station, type, evse_id)

    @after(Action.reset)
    def after_reset(self, call_unique_id: str, **_: Any) -> None:
        self._run_parked(call_unique_id, "Reset")

    @on(Action.request_start_transaction)
    @answering
    def on_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        call_unique_id: str,
        evse_id: int | None = None,
        **_: Any,
    ) -> Answer:
        token = id_token_from(id_token)
        return remote_control.request_start(self.station, token, remote_start_id, evse_id)

    @after(Action.request_start_transaction)
    def after_request_start_transaction(self, call_unique_id: str, **_: Any) -> None:
        self._run_parked(call_unique_id, "RequestStartTransaction")

    @on(Action.request_stop_transaction)
    @answering
    def on_request_stop_transaction(
        self, transaction_id: str, call_unique_id: str, **_: Any
    ) -> Answer:
        return remote_control.request_stop(self.station, transaction_id)

    @after(Action.request_stop_transaction)
    def after_request_stop_transaction(self, call_unique_id: str, **_: Any) -> None:
        self._run_parked(call_unique_id, "RequestStopTransaction")

    @on(Action.trigger_message)
    @answering
    def on_trigger_message(
        self,
        requested_message: str,
        call_unique_id: str,
        evse: dict[str, Any] | None = None,
        **_: Any,
    ) -> Answer:
        evse_id = None if evse is None else int(evse["id"])
        return remote_control.trigger_message(self.station, requested_message, evse_id)

    @after(Action.trigger_message)
    def after_trigger_message(self, call_unique_id: str, **_: Any) -> None:
        self._run_parked(call_unique_id, "TriggerMessage")

    @on(Action.change_availability)
    @answering
    def on_change_availability(
        self,
        operational_status: str,
        call_unique_id: str,
        evse: dict[str, Any] | None = None,
        **_: Any,
    ) -> Answer:
        evse_id = None if evse is None else int(evse["id"])
        connector_id = None if evse is None else evse.get("connector_id")
        operative = operational_status == "Operative"
        return availability.change_availability(self.station, operative, evse_id, connector_id)

    @after(Action.change_availability)
    def after_change_availability(self, call_unique_id: str, **_: Any) -> None:
        self._run_parked(call_unique_id, "ChangeAvailability")

    @on(Action.set_charging_profile)
    @answering
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], call_unique_id: str, **_: Any
    ) -> Answer:
        profile = charging_profile_from(charging_profile)
        return smart_charging.set_charging_profile(self.station, int(evse_id), profile)

    @on(Action.clear_charging_profile)
    @answering
    def on_clear_charging_profile(
        self,
        call_unique_id: str,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **_: Any,
    ) -> Answer:
        criteria = criteria_from(charging_profile_id, charging_profile_criteria)
        return smart_charging.clear_charging_profile(self.station, criteria)

    @on(Action.get_charging_profiles)
    @answering
    def on_get_charging_profiles(
        self,
        request_id: int,
        charging_profile: dict[str, Any],
        call_unique_id: str,
        evse_id: int | None = None,
        **_: Any,
    ) -> Answer:
        criteria = criteria_from(None, charging_profile, evse_id=evse_id)
        return smart_charging.get_charging_profiles(self.station, request_id, criteria)

    @after(Action.get_charging_profiles)
    def after_get_charging_profiles(self, call_unique_id: str, **_: Any) -> None:
        self._run_parked(call_unique_id, "GetChargingProfiles")

    @on(Action.data_transfer)
    @answering
    def on_data_transfer(self, vendor_id: str, call_unique_id: str, **_: Any) -> Answer:
        return housekeeping.data_transfer(vendor_id)

    @on(Action.clear_cache)
    @answering
    def on_clear_cache(self, call_unique_id: str, **_: Any) -> Answer:
        return housekeeping.clear_cache()

    @on(Action.get_local_list_version)
    @answering
    def on_get_local_list_version(self, call_unique_id: str, **_: Any) -> Answer:
        return housekeeping.local_list_version(self.station)

    @on(Action.send_local_list)
    @answering
    def on_send_local_list(
        self,
        version_number: int,
        update_type: str,
        call_unique_id: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> Answer:
        return housekeeping.send_local_list(
            self.station, int(version_number), update_type, local_authorization_list
        )

    @on(Action.get_composite_schedule)
    @answering
    def on_get_composite_schedule(
        self,
        duration: int,
        evse_id: int,
        call_unique_id: str,
        charging_rate_unit: str | None = None,
        **_: Any,
    ) -> Answer:
        return smart_charging.get_composite_schedule(
            self.station, int(evse_id), int(duration), charging_rate_unit
        )

    @on(Action.get_log)
    @answering
    def on_get_log(
        self,
        log: dict[str, Any],
        log_type: str,
        request_id: int,
        call_unique_id: str,
        **_: Any,
    ) -> Answer:
        return diagnostics.get_log(self.station, int(request_id), log_type, log["remote_location"])

    @after(Action.get_log)
    def after_get_log(self, call_unique_id: str, **_: Any) -> None:
        self._run_parked(call_unique_id, "GetLog")

    @on(Action.update_firmware)
    @answering
    def on_update_firmware(
        self, request_id: int, firmware: dict[str, Any], call_unique_id: str, **_: Any
    ) -> Answer:
        install = firmware.get("install_date_time")
        return update_firmware(
            self.station,
            int(request_id),
            firmware["location"],
            as_time(firmware["retrieve_date_time"], "retrieveDateTime"),
            install_at=None if install is None else as_time(install, "installDateTime"),
            signature=firmware.get("signature"),
            signing_certificate=firmware.get("signing_certificate"),
        )

    @after(Action.update_firmware)
    def after_update_firmware(self, call_unique_id: str, **_: Any) -> None:
        self._run_parked(call_unique_id, "UpdateFirmware")

    @on(Action.certificate_signed)
    @answering
    def on_certificate_signed(
        self,
        certificate_chain: str,
        call_unique_id: str,
        certificate_type: str | None = None,
        **_: Any,
    ) -> Answer:
        return certificates.certificate_signed(self.station, certificate_chain, certificate_type)

    @on(Action.get_transaction_status)
    @answering
    def on_get_transaction_status(
        self, call_unique_id: str, transaction_id: str | None = None, **_: Any
    ) -> Answer:
        return housekeeping.transaction_status(self.station, transaction_id)

    @on(Action.unlock_connector)
    @answering
    def on_unlock_connector(
        self, evse_id: int, connector_id: int, call_unique_id: str, **_: Any
    ) -> Answer:
        return housekeeping.unlock_connector(self.station, evse_id, connector_id)

    @on(Action.cost_updated)
    @answering
    def on_cost_updated(
        self, total_cost: float, transaction_id: str, call_unique_id: str, **_: Any
    ) -> Answer:
        return smart_charging.cost_updated(self.station, transaction_id, float(total_cost))
