"""The CSMS composition root: builds everything, owns start-up and shutdown."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from csms.config import CsmsConfig
from csms.context import CsmsServices
from csms.server import CsmsServer
from csms.service import StationService
from csms.store.sqlite import CsmsStore
from csms.timeutil import Clock, utc_now


@dataclass(slots=True)
class CsmsApp:
    store: CsmsStore
    server: CsmsServer
    stations: StationService

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        await self.server.stop()
        await self.store.close()


async def start_csms(data_dir: Path | str, config: CsmsConfig, clock: Clock = utc_now) -> CsmsApp:
    """Open the data directory, start listening, return the running app."""
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    store = await CsmsStore.open_data_dir(data_dir)
    services = CsmsServices(store=store, config=config, clock=clock)
    server = CsmsServer(services)
    try:
        await server.start()
    except BaseException:
        await store.close()
        raise
    return CsmsApp(store=store, server=server, stations=StationService(server))
