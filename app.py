"""The Tributary server: `streamlit run app.py` (or `uvicorn app:app`, one worker).

An st.App serving the UI (ui.py) with a lifespan that starts the process-wide services once
(core.server_state: store migrations, recovery of interrupted runs, the demo API; later the
scheduler) and the /api routes. No UI code here.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core import server_state
from core.access import LocalOnlyMiddleware

UI_SCRIPT = Path(__file__).resolve().parent / "ui.py"


@asynccontextmanager
async def lifespan(_app):
    # Start-up touches the store and binds a port: keep it off the event loop.
    started = await asyncio.to_thread(server_state.start_services)
    try:
        yield {"services": started}
    finally:
        await asyncio.to_thread(server_state.stop_services)


async def health(_request: Request) -> JSONResponse:
    try:
        body = await asyncio.to_thread(server_state.health)
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not crash
        return JSONResponse({"status": "error", "error": str(exc)}, status_code=503)
    return JSONResponse(body)


app = st.App(
    UI_SCRIPT,
    lifespan=lifespan,
    routes=[Route("/api/health", health, methods=["GET"])],
    middleware=[Middleware(LocalOnlyMiddleware)],
)
