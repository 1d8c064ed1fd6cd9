"""1.6 Authorize: typeless idTags found in the registry, statuses folded into 1.6's enum."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from csms.blocks16.authorization import UNREGISTERED_TYPE, authorize_id_tag, id_tag_info
from csms.config import CsmsConfig
from csms.context import CsmsServices
from csms.model import TokenRecord
from csms.store.sqlite import CsmsStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
async def services() -> AsyncIterator[CsmsServices]:
    store = await CsmsStore.open(":memory:")
    try:
        yield CsmsServices(store=store, config=CsmsConfig(), clock=lambda: NOW)
    finally:
        await store.close()


def token(id_token: str, token_type: str, status: str, expires: str | None = None) -> TokenRecord:
    return TokenRecord(id_token, token_type, status, "invoice", expires, "2026-11-01T00:00:00Z")


@pytest.mark.parametrize(
    ("status_201", "status_16"),
    [
        ("Accepted", "Accepted"),
        ("Blocked", "Blocked"),
        ("Expired", "Expired"),
        ("ConcurrentTx", "ConcurrentTx"),
        ("Invalid", "Invalid"),
        ("Unknown", "Invalid"),
        ("NoCredit", "Invalid"),
        ("NotAtThisLocation", "Invalid"),
    ],
)
def test_201_statuses_fold_into_16(status_201: str, status_16: str) -> None:
    assert id_tag_info({"status": status_201}) == {"status": status_16}


async def test_registered_tags_are_found_whatever_their_type(services: CsmsServices) -> None:
    await services.store.add_token(token("CARD", "ISO14443", "Accepted"))
    await services.store.add_token(token("TEMP-1", "Central", "Accepted"))
    await services.store.add_token(token("OLD", "ISO15693", "Accepted", "2026-11-25T11:00:00Z"))
    await services.store.add_token(token("BAD", "ISO14443", "Blocked"))
    assert await authorize_id_tag(services, "CARD") == ({"status": "Accepted"}, "ISO14443")
    assert await authorize_id_tag(services, "TEMP-1") == ({"status": "Accepted"}, "Central")
    assert await authorize_id_tag(services, "OLD") == (
        {"status": "Expired", "expiryDate": "2026-11-25T11:00:00Z"},
        "ISO15693",
    )
    assert await authorize_id_tag(services, "BAD") == ({"status": "Blocked"}, "ISO14443")
    assert await authorize_id_tag(services, "NOBODY") == ({"status": "Invalid"}, UNREGISTERED_TYPE)


async def test_rfid_wins_when_a_tag_is_registered_twice(services: CsmsServices) -> None:
    await services.store.add_token(token("TWICE", "Central", "Blocked"))
    await services.store.add_token(token("TWICE", "ISO14443", "Accepted"))
    assert await authorize_id_tag(services, "TWICE") == ({"status": "Accepted"}, "ISO14443")
