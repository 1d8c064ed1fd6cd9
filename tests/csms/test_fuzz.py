"""Property-based fuzzing of the frame parser and of every handler (2.0.1, 2.1, 1.6) behind
the Dispatcher.

Properties: the parser raises nothing but FrameError; every frame that is not an answer to one
of our calls gets exactly one reply, a well-formed CALLRESULT or CALLERROR with the right id;
handlers fed random JSON and schema-shaped payloads (valid, loosened, with junk leaves), in
strict and tolerant mode, over a real in-memory store, never raise, never hang, and never
answer InternalError (which would mean a handler tripped over its input).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from csms.blocks import HANDLERS_201
from csms.blocks16 import HANDLERS_16
from csms.blocks21 import HANDLERS_21
from csms.config import CsmsConfig
from csms.context import CsmsServices, StationContext
from csms.ocpp.frames import Call, CallError, CallResult, FrameError, parse_frame
from csms.ocpp.rpc import Dispatcher, Inbound
from csms.ocpp.schemas import SchemaSet
from csms.ocpp.tolerance import RequestSchemas
from csms.ocpp.versions import OCPP16, OCPP21, OCPP201, OcppVersion
from csms.store.sqlite import CsmsStore

STATION = "CS-FUZZ"
ANSWER_START = re.compile(rb"^\s*\[\s*[34]\s*,")
REPLY_TIMEOUT = 5.0
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples every run: a fast, repeatable suite
)

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


# -- the frame parser ---------------------------------------------------------------------

call_like = st.builds(
    lambda kind, message_id, action, payload: json.dumps([kind, message_id, action, payload]),
    st.sampled_from([2, 2, 2, 3, 4, 5, "2", 2.0]),
    st.one_of(st.text(max_size=40), st.integers(), st.none()),
    st.one_of(st.sampled_from(sorted(HANDLERS_201)), st.text(max_size=20), st.integers()),
    json_value,
)
frame_text = st.one_of(
    call_like,
    call_like.map(lambda text: text[: len(text) // 2]),  # cut off mid-frame
    st.text(max_size=200),
    st.binary(max_size=200),
    json_value.map(json.dumps),
)


@FUZZ
@given(text=frame_text)
def test_parser_raises_only_frame_error(text: str | bytes) -> None:
    try:
        frame = parse_frame(text)
    except FrameError as exc:
        assert exc.code and isinstance(exc.message_id, str)
        return
    assert isinstance(frame, (Call, CallResult, CallError))


# -- the Dispatcher with real handlers and a real store -----------------------------------


def fixed_clock() -> datetime:
    return datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


class Harness:
    """One event loop for all examples of a test; a fresh in-memory store for each example,
    so that every example is independent of the ones before it (and replays the same)."""

    def __init__(self, version: OcppVersion, handlers: dict[str, Any]) -> None:
        self.version = version
        self.handlers = handlers
        self.runner = asyncio.Runner()
        self.dispatchers = {
            tolerant: Dispatcher(
                version=version,
                handlers=handlers,
                schemas=SchemaSet(version),
                tolerance=RequestSchemas(version),
                tolerant=tolerant,
                clock=fixed_clock,
            )
            for tolerant in (False, True)
        }

    def answer(self, text: str | bytes, *, tolerant: bool) -> Inbound:
        return self.runner.run(asyncio.wait_for(self._answer(text, tolerant), REPLY_TIMEOUT))

    async def _answer(self, text: str | bytes, tolerant: bool) -> Inbound:
        store = await CsmsStore.open(":memory:")
        try:
            await store.add_station(STATION, "scrypt$x", "2026-01-01T00:00:00Z")
            services = CsmsServices(store=store, config=CsmsConfig(), clock=fixed_clock)
            context = StationContext(STATION, services)
            return await self.dispatchers[tolerant].handle(context, text, station_id=STATION)
        finally:
            await store.close()

    def close(self) -> None:
        self.runner.close()


VERSIONS = {
    "2.0.1": (OCPP201, HANDLERS_201),
    "2.1": (OCPP21, HANDLERS_21),
    "1.6": (OCPP16, HANDLERS_16),
}


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    h = Harness(OCPP201, HANDLERS_201)
    yield h
    h.close()


@pytest.fixture(scope="module", params=sorted(VERSIONS))
def any_harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    version, handlers = VERSIONS[request.param]
    h = Harness(version, handlers)
    yield h
    h.close()


def assert_one_reply(reply: str | None, message_id: str | None) -> list[Any]:
    assert reply is not None, "a CALL-like frame went unanswered"
    message = json.loads(reply)
    assert isinstance(message, list) and message[0] in (3, 4)
    if message[0] == 3:
        assert len(message) == 3 and isinstance(message[2], dict)
    else:
        assert len(message) == 5 and isinstance(message[2], str) and isinstance(message[3], str)
        assert isinstance(message[4], dict)
        assert message[2] != "InternalError", f"handler failed: {message}"
    if message_id is not None:
        assert message[1] == message_id
    return message


@settings(FUZZ, max_examples=300)
@given(text=frame_text, tolerant=st.booleans())
def test_every_frame_but_an_answer_gets_exactly_one_reply(
    harness: Harness, text: str | bytes, tolerant: bool
) -> None:
    inbound = harness.answer(text, tolerant=tolerant)
    if inbound.reply is None:
        # only answers to our own calls (message type 3 or 4) go unanswered
        assert inbound.response is not None or inbound.error_code is not None
        assert ANSWER_START.match(_raw(text)), text
        return
    message = json.loads(inbound.reply)
    assert message[0] in (3, 4)
    if message[0] == 3:  # only a valid CALL of a known action gets a CALLRESULT
        assert isinstance(parse_frame(text), Call)


def _raw(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("utf-8", "replace")


# -- schema-shaped payloads ---------------------------------------------------------------


def timestamps(*, zoned: bool) -> st.SearchStrategy[str]:
    moments = st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
    if zoned:
        return moments.map(lambda m: m.isoformat().replace("+00:00", "Z"))
    return moments.map(lambda m: m.replace(tzinfo=None).isoformat())


# Fields drawn from a narrower range than their schema allows (none at present; a huge
# multiplier is answered with a clear CALLERROR, see test_huge_multiplier_is_a_clear_callerror).
FIELD_OVERRIDES: dict[str, st.SearchStrategy[Any]] = {"multiplier": st.integers(-12, 12)}


def from_schema(
    node: Any, root: dict[str, Any], *, wild: bool, depth: int = 0, name_hint: str = ""
) -> st.SearchStrategy[Any]:
    """Values shaped by a JSON schema node: valid ones, or (``wild``) loosened ones with junk
    leaves, odd spellings, over-long strings and missing required keys."""
    while isinstance(node, dict) and "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = root.get("definitions", {}).get(name, {})
    if not isinstance(node, dict) or depth > 6:
        return json_leaf
    kind = node.get("type")
    if name_hint in FIELD_OVERRIDES:
        return FIELD_OVERRIDES[name_hint]

    def loosen(valid: st.SearchStrategy[Any], *odd: st.SearchStrategy[Any]) -> Any:
        return st.one_of(valid, valid, *odd, json_leaf) if wild else valid

    if "enum" in node:
        values = st.sampled_from(node["enum"])
        return loosen(values, values.map(str.lower))
    if kind == "object":
        properties = node.get("properties", {})
        required = [k for k in node.get("required", []) if k in properties]
        shaped = {
            k: from_schema(v, root, wild=wild, depth=depth + 1, name_hint=k)
            for k, v in properties.items()
            if wild or k != "customData"  # vendor extensions: only in wild payloads
        }
        valid = st.fixed_dictionaries(
            {k: shaped[k] for k in required},
            optional={k: v for k, v in shaped.items() if k not in required},
        )
        return loosen(valid, st.fixed_dictionaries({}, optional=shaped))
    if kind == "array":
        items = from_schema(node.get("items", {}), root, wild=wild, depth=depth + 1)
        low = min(int(node.get("minItems", 0)), 2)
        return loosen(st.lists(items, min_size=low, max_size=low + 2))
    if kind == "string":
        if node.get("format") == "date-time":
            return loosen(timestamps(zoned=True), timestamps(zoned=False))
        limit = int(node.get("maxLength", 50))
        low = int(node.get("minLength", 0))
        valid_text = st.text(min_size=low, max_size=max(low, min(limit, 40)))
        too_long = st.text(max_size=5).map(lambda tail: "x" * (limit + 1) + tail)
        return loosen(valid_text, too_long)
    if kind == "integer":
        low, high = node.get("minimum"), node.get("maximum")
        valid_int = st.integers(min_value=low, max_value=high)
        return loosen(valid_int, valid_int.map(str), st.integers())
    if kind == "number":
        valid_number = st.one_of(
            st.integers(min_value=0, max_value=10**9),
            st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, width=32),
        )
        return loosen(valid_number, valid_number.map(str))
    if kind == "boolean":
        return loosen(st.booleans(), st.sampled_from(["true", "False"]))
    return json_leaf


def payload_for(version: OcppVersion, action: str) -> st.SearchStrategy[Any]:
    schema = RequestSchemas(version).get(action)
    assert schema is not None, action
    valid = from_schema(schema, schema, wild=False)
    return st.one_of(
        valid,
        valid,
        valid,
        from_schema(schema, schema, wild=True),
        st.dictionaries(st.text(max_size=12), json_value, max_size=5),
    )


@settings(FUZZ, max_examples=250)
@given(data=st.data(), tolerant=st.booleans())
def test_every_handler_answers_every_payload_exactly_once(
    any_harness: Harness, data: st.DataObject, tolerant: bool
) -> None:
    harness = any_harness
    action = data.draw(st.sampled_from(sorted(harness.handlers)), label="action")
    payload = data.draw(payload_for(harness.version, action), label="payload")
    if not isinstance(payload, dict):
        payload = {"value": payload}
    text = json.dumps([2, "fuzz-1", action, payload])
    message = assert_one_reply(harness.answer(text, tolerant=tolerant).reply, "fuzz-1")
    event(f"{action}: {'CALLRESULT' if message[0] == 3 else message[2]}")


def test_huge_multiplier_is_a_clear_callerror(harness: Harness) -> None:
    event = {
        "eventType": "Started",
        "timestamp": "2026-11-25T10:00:00Z",
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "tx-1"},
        "meterValue": [
            {
                "timestamp": "2026-11-25T10:00:00Z",
                "sampledValue": [
                    {"value": 1, "unitOfMeasure": {"unit": "Wh", "multiplier": 10**9}}
                ],
            }
        ],
    }
    inbound = harness.answer(json.dumps([2, "m1", "TransactionEvent", event]), tolerant=False)
    assert_one_reply(inbound.reply, "m1")
