"""Fixtures: a review world and the web app serving it on 127.0.0.1:0."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from csms.web.deps import ReviewDeps
from csms.web.server import start_web
from tests.csms.web.world import World, build_world


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    built = await build_world(tmp_path / "data")
    yield built
    await built.store.close()


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the signing setup (credits work) and no live stations (read-only)."""
    deps = ReviewDeps(store=world.store, data_dir=world.data_dir, setup=world.setup)
    web = await start_web(deps, "127.0.0.1", 0)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}", timeout=10) as http:
        yield http
    await web.stop()
