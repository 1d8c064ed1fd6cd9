"""Serve the review app with uvicorn inside the caller's event loop (``start_web``/``stop``).

uvicorn normally takes over SIGINT/SIGTERM; here the process belongs to its composition root
(the CSMS or ``v2g dashboard``), so the web server leaves signals alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

from csms.operators import OperatorRegistry
from csms.web.app import create_app
from csms.web.deps import ReviewDeps
from csms.web.limits import DEFAULT_MAX_BODY_BYTES, HttpLimits

log = logging.getLogger(__name__)


class WebBindError(OSError):
    """The dashboard/API address cannot be listened on (``address`` is ``host:port``)."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"cannot listen on {host}:{port}: {reason}")
        self.address = f"{host}:{port}"


def bind_reason(exc: OSError) -> str:
    """``address already in use`` rather than the event loop's long wording of it."""
    if exc.errno == errno.EADDRINUSE:
        return "address already in use"
    return exc.strerror or str(exc)


def _listen(host: str, port: int) -> socket.socket:
    """Bind here, so a taken port is an OSError rather than uvicorn's SystemExit in a task."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise WebBindError(host, port, bind_reason(exc)) from None


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class WebServer:
    """A running review web server; ``await stop()`` to shut it down."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
        self._server = server
        self._task = task

    @property
    def app(self) -> Any:
        """The FastAPI application being served."""
        app = self._server.config.app
        return getattr(app, "app", app)  # inside the HttpLimits wrapper

    @property
    def port(self) -> int:
        sockets = self._server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self._server.should_exit = True
        try:
            await asyncio.wait_for(self._task, 10)
        except TimeoutError:
            self._task.cancel()


async def start_web(
    deps: ReviewDeps,
    host: str,
    port: int,
    *,
    registry: OperatorRegistry | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> WebServer:
    """Start serving on ``host:port`` (0 picks a free port); returns once it listens."""
    app = HttpLimits(create_app(deps, registry=registry), max_body_bytes)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )
    # Loading imports the HTTP protocol modules (~0.3 s): off the event loop, which may
    # already serve stations.
    await asyncio.to_thread(config.load)
    server = _Server(config)
    sock = _listen(host, port)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="review-web")
    while not server.started:
        if task.done():
            try:
                task.result()  # uvicorn exits (SystemExit) when it cannot bind
            except SystemExit:
                pass
            raise OSError(f"web server on {host}:{port} stopped during start-up")
        await asyncio.sleep(0.01)
    web = WebServer(server, task)
    log.info("review dashboard on http://%s:%d/", host, web.port)
    return web
