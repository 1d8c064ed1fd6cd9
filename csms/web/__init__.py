"""Operator review over HTTP: the JSON API, the dashboard pages and ``/metrics``.

Module map: ``deps`` (what the app is given), ``errors`` (the exception tree and its one
mapping to HTTP statuses), ``auth`` (Basic for the API, a signed cookie for pages),
``api`` (JSON routes), ``pages`` (server-rendered HTML), ``chart`` (the SVG session chart),
``chain`` (ledger status read from a data dir), ``app`` (the FastAPI composition),
``server`` (``start_web``: uvicorn inside the running event loop).
"""
