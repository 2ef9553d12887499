"""/docs (Swagger UI) served without a network: its JavaScript, CSS and favicon come from the
``fastapi-offline`` package, mounted read-only at ``/docs/static`` (FastAPI's "Self-hosting
JavaScript and CSS for docs"). FastAPI's own page loads them from cdn.jsdelivr.net, so an
air-gapped user got a blank page.

ReDoc (/redoc) is off: even self-hosted, its bundle loads its logo from cdn.redoc.ly, with no
option to stop it; /docs and /openapi.json cover the same schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"  # swagger-ui-bundle.js, swagger-ui.css,
STATIC = "/docs/static"                                     # favicon.png (and redoc, unused)


def offline_app(**kwargs: Any) -> FastAPI:
    """``FastAPI(**kwargs)`` whose /docs loads nothing from another host, without /redoc."""
    app = FastAPI(docs_url=None, redoc_url=None, **kwargs)
    # StaticFiles answers GET and HEAD only (405 otherwise) and never leaves its directory;
    # check_dir: a missing asset directory stops the server at start, not a blank page later
    app.mount(STATIC, StaticFiles(directory=ASSETS, check_dir=True), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + app.openapi_url, title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        )

    return app
