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
from csms.web.deps import ReviewDeps
from csms.web.server import WebServer, start_web


@dataclass(slots=True)
class CsmsApp:
    store: CsmsStore
    server: CsmsServer
    stations: StationService
    web: WebServer | None = None  # the review dashboard, API and /metrics

    @property
    def port(self) -> int:
        return self.server.port

    async def stop(self) -> None:
        if self.web is not None:
            await self.web.stop()
        await self.server.stop()
        await self.store.close()


async def start_csms(
    data_dir: Path | str, config: CsmsConfig, clock: Clock = utc_now, *, serve_web: bool = False
) -> CsmsApp:
    """Open the data directory, start listening, return the running app.

    ``serve_web`` also serves the review dashboard on ``config.http_host:http_port``.
    """
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    store = await CsmsStore.open_data_dir(data_dir)
    services = CsmsServices(store=store, config=config, clock=clock)
    server = CsmsServer(services)
    try:
        await server.start()
    except BaseException:
        await store.close()
        raise
    app = CsmsApp(store=store, server=server, stations=StationService(server))
    if serve_web:
        deps = ReviewDeps(
            store=store,
            data_dir=Path(data_dir),
            stations=app.stations,
            server=server,
            settlement_written=services.settlement_written,
            clock=clock,
        )
        try:
            app.web = await start_web(deps, config.http_host, config.http_port)
        except BaseException:
            await app.stop()
            raise
    return app
