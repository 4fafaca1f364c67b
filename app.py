"""The Tributary server: `streamlit run app.py` (or `uvicorn app:app`, one worker).

An st.App serving the UI (ui.py) with a lifespan that starts the process-wide services once
(core.housekeeping: store migrations, recovery of interrupted runs, the scheduler and run
queue, the demo API) and the /api routes: health, and the webhook trigger. No UI code here.
Run ONE worker: each worker would start its own scheduler.
"""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app_pages.view_models import drafts
from common.errors import TributaryError
from core import housekeeping, webhooks
from app_pages.access import AllowedHostsMiddleware, LocalOnlyMiddleware

UI_SCRIPT = Path(__file__).resolve().parent / "ui.py"


@asynccontextmanager
async def lifespan(_app):
    # Start-up touches the store and binds a port: keep it off the event loop.
    try:
        started = await asyncio.to_thread(housekeeping.start_services, drafts.dependency_sets)
    except TributaryError as exc:
        # A store that cannot be read (and the like) is one line saying what to do, not the
        # server's traceback; nothing has started yet, so there is nothing to stop.
        sys.stderr.write(f"error: {exc}\n")
        sys.stderr.flush()
        os._exit(2)
    try:
        yield {"services": started}
    finally:
        await asyncio.to_thread(housekeeping.stop_services)


async def health(_request: Request) -> JSONResponse:
    try:
        body = await asyncio.to_thread(housekeeping.health)
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not crash
        return JSONResponse({"status": "error", "error": str(exc)}, status_code=503)
    # 503 when something the app needs is down (the celery executor's broker): a load balancer
    # or an orchestrator should see that this app cannot get runs executed, not just that it answers.
    return JSONResponse(body, status_code=200 if body.get("status") == "ok" else 503)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, read from the stream (chunked or not) and never more than `limit`
    bytes of it: past that, webhooks.PayloadProblem(413) and the rest stays unread."""
    declared = request.headers.get("content-length") or "0"
    if declared.isdigit() and int(declared) > limit:
        raise webhooks.body_too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise webhooks.body_too_large()
        chunks.append(chunk)
    return b"".join(chunks)


async def trigger_feed(request: Request) -> JSONResponse:
    """POST /api/feeds/{name}/trigger: the webhook trigger (core.webhooks decides). The token
    is checked before the body is read, and the body read up to 1 MiB only."""
    name = request.path_params["name"]
    refused = await asyncio.to_thread(webhooks.check_token, name, request.headers.get(webhooks.TOKEN_HEADER))
    if refused is not None:
        status, body = refused
        return JSONResponse(body, status_code=status, headers={"connection": "close"})
    try:
        raw = await _read_body(request, webhooks.MAX_BODY_BYTES)
        payload = await asyncio.to_thread(webhooks.parse_payload, raw)  # up to 1 MiB: off the event loop
    except webhooks.PayloadProblem as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers={"connection": "close"})
    status, body = await asyncio.to_thread(webhooks.trigger_checked, name, payload)
    return JSONResponse(body, status_code=status)


app = st.App(
    UI_SCRIPT,
    lifespan=lifespan,
    routes=[
        Route("/api/health", health, methods=["GET"]),
        Route("/api/feeds/{name}/trigger", trigger_feed, methods=["POST"]),
    ],
    # Outermost first: a request addressed to a host that is not allowed is refused whoever sent it.
    middleware=[Middleware(AllowedHostsMiddleware), Middleware(LocalOnlyMiddleware)],
)
