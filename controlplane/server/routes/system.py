"""System routes: health and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from .. import scrape
from ..context import Ctx

router = APIRouter(tags=["system"])


@router.get("/api/healthz", response_class=PlainTextResponse)
async def healthz() -> str:
    return "OK"


@router.get("/metrics", response_class=Response)
async def metrics(context: Ctx) -> Response:
    await scrape.refresh(context)
    return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)
