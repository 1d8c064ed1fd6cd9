"""Fuzzing the station's handlers: one frame in, exactly one well-formed answer out.

The property: a call whose payload satisfies the version's schema gets a CALLRESULT (which the
library has checked against the response schema before sending); any other gets a CALLERROR.
Never an InternalError (an unmapped exception in a handler), never silence.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, validate_payload

from chargepoint.client import StationClient
from chargepoint.station import Station
from tests.chargepoint.test_client import FakeConnection, next_out

numbers = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=30))
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly well-typed values, one in twenty anything at all."""
    return st.integers(0, 19).flatmap(lambda n: anything if n == 0 else strategy)


def drop_some(payload: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """The payload, one time in five with some top-level fields left out (required ones too)."""
    dropped = payload.flatmap(
        lambda p: st.sets(st.sampled_from(sorted(p) or [""])).map(
            lambda gone: {k: v for k, v in p.items() if k not in gone}
        )
    )
    return st.integers(0, 4).flatmap(lambda n: dropped if n == 0 else payload)


async def schema_valid(action: str, payload: dict[str, Any], version: str) -> bool:
    try:
        await validate_payload(Call("x", action, payload), version)
    except (OCPPError, ArithmeticError):  # a number too large for the decimal check
        return False
    return True


def answer_one(
    build: Callable[[], tuple[Station, StationClient, FakeConnection]],
    action: str,
    payload: dict[str, Any],
    version: str,
) -> None:
    """Send one call to a fresh station and check the property above."""

    async def run() -> None:
        station, client, conn = build()
        serving = asyncio.create_task(client.start())
        try:
            await conn.inbox.put(json.dumps([2, "fuzz-1", action, payload]))
            frame = await asyncio.wait_for(next_out(conn), 2)
            assert frame[1] == "fuzz-1", frame
            valid = await schema_valid(action, payload, version)
            if valid:
                assert frame[0] == 3, (action, payload, frame)
            else:
                assert frame[0] == 4, (action, payload, frame)
            assert not (frame[0] == 4 and frame[2] == "InternalError"), frame
        finally:
            serving.cancel()
            await station.shutdown()

    asyncio.run(run())
