"""The store refuses station ids outside OCPP's identifierString characters (without ':'),
whoever registers them: the CLI, an import, or code calling the store directly."""

from __future__ import annotations

from pathlib import Path

import pytest

from csms.errors import RegistryError
from csms.store.sqlite import CsmsStore

AT = "2026-11-25T00:00:00.000Z"


@pytest.mark.parametrize("bad", ["CS:1", "CS 1", "", "CS/1", "CS\u00e9", "x" * 49, "CS\ud800"])
async def test_a_bad_station_id_is_refused_and_nothing_is_stored(tmp_path: Path, bad: str) -> None:
    store = await CsmsStore.open(tmp_path / "csms.sqlite")
    try:
        with pytest.raises(RegistryError, match="identifierString"):
            await store.add_station(bad, "scrypt$x", AT)
        with pytest.raises(RegistryError, match="identifierString"):
            await store.add_stations(
                [("CS-OK", "scrypt$x", None, None, None), (bad, "h", None, None, None)], AT
            )
        assert await store.list_stations() == []
        await store.add_station("CS-1_a.b@c|d+e=f*", "scrypt$x", AT)
        assert [s.station_id for s in await store.list_stations()] == ["CS-1_a.b@c|d+e=f*"]
    finally:
        await store.close()
