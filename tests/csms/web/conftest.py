"""Fixtures: a review world (built once, copied per test) and the web app serving it."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from csms.web.deps import ReviewDeps
from csms.web.server import start_web
from tests.csms.web.world import World, build_world, open_world


@pytest.fixture(scope="session")
def world_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One world for the session: a chain, scrypt hashes and signatures take a while."""
    root = tmp_path_factory.mktemp("world") / "data"

    async def build() -> None:
        world = await build_world(root)
        await world.store.close()

    with ThreadPoolExecutor(1) as pool:  # its own event loop, away from any test's
        pool.submit(asyncio.run, build()).result()
    return root


@pytest.fixture
async def world(world_template: Path, tmp_path: Path) -> AsyncIterator[World]:
    data_dir = tmp_path / "data"
    shutil.copytree(world_template, data_dir)
    opened = await open_world(data_dir)
    yield opened
    await opened.store.close()


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the signing setup (credits work) and no live stations (read-only)."""
    deps = ReviewDeps(store=world.store, data_dir=world.data_dir, setup=world.setup)
    web = await start_web(deps, "127.0.0.1", 0)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}", timeout=10) as http:
        yield http
    await web.stop()
