"""``/ui``: the operator dashboard, a static single-page app shipped in :mod:`cueflow.ui`.

The pages need no authentication: they hold no data. The app signs in with an API key kept in
the browser session and calls the public REST API with it, like any other client.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

import cueflow.ui
from cueflow.errors import NotFound

router = APIRouter(tags=["ui"], include_in_schema=False)

ASSETS = Path(cueflow.ui.__file__).parent
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9_-]*\.?[a-z0-9]*$")
# The app loads only its own scripts and styles and talks only to this server.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def asset(name: str) -> Response:
    """The dashboard file ``name`` (a path below :mod:`cueflow.ui`), or 404 ``not_found``."""
    parts = name.split("/")
    path = ASSETS.joinpath(*parts)
    if (
        not all(_SEGMENT.match(part) for part in parts)
        or path.suffix not in MEDIA_TYPES
        or not path.is_file()
    ):
        raise NotFound("No such dashboard file", code="not_found")
    return Response(path.read_bytes(), media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)


@router.get("/ui")
async def ui_root() -> Response:
    """Send ``/ui`` to ``/ui/``, so the page's relative asset paths resolve below it (the
    location is relative too, so a reverse proxy may serve cueflow under a path prefix)."""
    return RedirectResponse("ui/", status_code=308)


@router.get("/ui/")
async def ui_index() -> Response:
    """The dashboard's page."""
    return asset("index.html")


@router.get("/ui/{name:path}")
async def ui_asset(name: str) -> Response:
    """A script, stylesheet or icon of the dashboard."""
    return asset(name)
