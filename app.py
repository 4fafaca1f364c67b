"""The Tributary server: `streamlit run app.py` (or `uvicorn app:app`, one worker).

An st.App serving the UI (ui.py) with a lifespan that starts the process-wide services once
(core.housekeeping: store migrations, recovery of interrupted runs, the scheduler and run
queue, the demo API) and the /api routes: health, and the webhook trigger. No UI code here.
Run ONE worker: each worker would start its own scheduler.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app_pages.view_models import drafts
from core import housekeeping, webhooks
from app_pages.access import LocalOnlyMiddleware

UI_SCRIPT = Path(__file__).resolve().parent / "ui.py"
MAX_WEBHOOK_BODY = 1024 * 1024  # a trigger's payload is a small JSON object


@asynccontextmanager
async def lifespan(_app):
    # Start-up touches the store and binds a port: keep it off the event loop.
    started = await asyncio.to_thread(housekeeping.start_services, drafts.dependency_sets)
    try:
        yield {"services": started}
    finally:
        await asyncio.to_thread(housekeeping.stop_services)


async def health(_request: Request) -> JSONResponse:
    try:
        body = await asyncio.to_thread(housekeeping.health)
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not crash
        return JSONResponse({"status": "error", "error": str(exc)}, status_code=503)
    return JSONResponse(body)


async def trigger_feed(request: Request) -> JSONResponse:
    """POST /api/feeds/{name}/trigger: the webhook trigger (core.webhooks decides)."""
    if int(request.headers.get("content-length") or 0) > MAX_WEBHOOK_BODY:
        return JSONResponse({"error": "payload: the request body is larger than 1 MB"}, status_code=413)
    raw = await request.body()
    if len(raw) > MAX_WEBHOOK_BODY:
        return JSONResponse({"error": "payload: the request body is larger than 1 MB"}, status_code=413)
    try:
        payload = json.loads(raw) if raw.strip() else None
    except ValueError:
        return JSONResponse({"error": "payload: the request body is not valid JSON"}, status_code=400)
    status, body = await asyncio.to_thread(
        webhooks.handle_trigger, request.path_params["name"], request.headers.get(webhooks.TOKEN_HEADER), payload
    )
    return JSONResponse(body, status_code=status)


app = st.App(
    UI_SCRIPT,
    lifespan=lifespan,
    routes=[
        Route("/api/health", health, methods=["GET"]),
        Route("/api/feeds/{name}/trigger", trigger_feed, methods=["POST"]),
    ],
    middleware=[Middleware(LocalOnlyMiddleware)],
)
