"""Serving the ASGI app over HTTP with uvicorn, configured from the settings."""

from __future__ import annotations

import uvicorn
from starlette.types import ASGIApp

from cueflow.api.connections import guarded_protocol
from cueflow.config import Settings


def serve_forever(app: ASGIApp, settings: Settings, log_level: str) -> None:
    """Serve ``app`` on ``settings.host:port`` until a signal stops the process."""
    proxies = settings.forwarded_allow_ips.strip()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        log_config=None,  # uvicorn's records go through the handler logs.configure installed
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: only from
        # the configured proxies, and from nobody by default
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        http=guarded_protocol(settings),  # timeouts and caps: cueflow.api.connections
        ws="none",  # no WebSocket routes: an upgrade stays a plain HTTP request
        timeout_keep_alive=settings.keep_alive_seconds,
    )
    uvicorn.Server(config).run()
