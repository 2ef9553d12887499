"""The API's answers to what a careless or hostile client sends: errors as JSON
``{"error": {"status", "message"}}`` (never a stack trace), and an ASGI layer under the routes.

- HEAD is answered on every GET route (headers of the GET, no body): FastAPI's ``@app.get``
  answered ``curl -I`` and uptime probes with 405.
- A 405 names the allowed methods in ``Allow`` (RFC 9110 requires it; the JSON error handler
  dropped the header Starlette set).
- A redirect (``/runs/x/`` to ``/runs/x``) points at a path on this server: Starlette built its
  ``Location`` from the request's ``Host`` header, so ``Host: evil.example`` sent a client there.
- A request body over ``MAX_BODY`` bytes (1 MiB; ``POST /runs`` sends a few hundred) is 413
  before it is read: a 50 MB body was parsed into memory, and answered 422 a second later.
- A value read from a run's file that does not fit the response (an edited ``incidents.json``,
  ``"start": "garbage"``) is a 500 naming the file and the record (:func:`conform`), not
  "internal error".
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runstore import StoreError

log = logging.getLogger("shocklab.api")
MAX_BODY = 1 << 20


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def error(status: int, message: str, details: list | None = None,
          headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """The exception handlers and the ASGI layer of this module on ``app``."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError):
        return error(exc.status, exc.message)

    @app.exception_handler(StoreError)
    async def _store_error(_: Request, exc: StoreError):
        return error(exc.status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException):
        msg = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 400 and msg == FASTAPI_BODY_ERROR:
            msg = _unreadable_body(exc.__cause__)
        return error(exc.status_code,
                     "not found" if exc.status_code == 404 and msg == "Not Found" else msg,
                     headers=dict(exc.headers or {}))  # a 405's Allow

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if any(tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors()) and not (
                kind == "application/json" or kind.endswith("+json")):
            # FastAPI reads a body as JSON only under a JSON content type: a JSON body sent
            # without one was "body: Input should be a valid dictionary…"
            return error(415, f"the request body must be JSON sent with Content-Type: "
                              f"application/json (got {repr(kind or 'none')[:80]})")
        details = [
            {"loc": [str(p) for p in e.get("loc", ())],
             "msg": str(e.get("msg", "")).removeprefix("Value error, ")}
            for e in exc.errors()
        ]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        return error(422, f"{'.'.join(first['loc'])}: {first['msg']}", details)

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error(500, "internal error (see the server log)")

    app.add_middleware(HeadAndRedirects)


# FastAPI's 400 for a JSON body it could not decode other than by a JSON syntax error (those are
# 422 naming the place): the cause is its __cause__
FASTAPI_BODY_ERROR = "There was an error parsing the body"


def _unreadable_body(cause: BaseException | None) -> str:
    """Why a JSON body could not be read, for the 400 FastAPI words as "There was an error
    parsing the body" (a body that is not UTF-8 / UTF-16 / UTF-32 text, or nested too deeply)."""
    if isinstance(cause, UnicodeDecodeError):
        return (f"the request body is not JSON text: the byte at offset {cause.start} is not "
                f"{cause.encoding.upper()} (send UTF-8)")
    if isinstance(cause, RecursionError):
        return "the request body's JSON is nested too deeply to read"
    return ("the request body could not be read as JSON"
            + (f" ({type(cause).__name__})" if cause is not None else ""))


class HeadAndRedirects:
    """HEAD as GET without the body; ``Allow`` naming HEAD beside GET; a redirect's ``Location``
    as a path on this server (never the host a request's ``Host`` header named); a body over
    ``MAX_BODY`` refused."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if scope["method"] not in ("GET", "HEAD"):
            receive = await _bounded(scope, receive)
            if receive is None:
                await error(413, f"request body over {MAX_BODY} bytes (POST /runs needs a few "
                                 "hundred)")(scope, _nothing, send)
                return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _fixed(message["status"], message["headers"])}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}  # Content-Length stays the GET's
            await send(message)

        await self.app({**scope, "method": "GET"} if head else scope, receive, sending)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


async def _bounded(scope: Scope, receive: Receive) -> Receive | None:
    """A ``receive`` replaying a body of at most ``MAX_BODY`` bytes, read here in full; None
    for a larger one (a declared Content-Length over it is refused before anything is read)."""
    length = dict(scope["headers"]).get(b"content-length", b"0")
    if not length.isdigit() or int(length) > MAX_BODY:
        return None
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: let the app see it
            chunks.append(message)
            break
        size += len(message.get("body", b""))
        if size > MAX_BODY:  # chunked: no length declared
            return None
        chunks.append(message)
        more = message.get("more_body", False)

    async def replay() -> Message:
        return chunks.pop(0) if chunks else await receive()

    return replay


def _fixed(status: int, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    out = []
    for k, v in headers:
        name = k.lower()
        if name == b"allow" and status == 405:
            methods = [m.strip() for m in v.decode("latin-1").split(",")]
            if "GET" in methods and "HEAD" not in methods:
                v = ", ".join([*methods, "HEAD"]).encode("latin-1")
        elif name == b"location" and 300 <= status < 400:
            url = urlsplit(v.decode("latin-1"))
            # a path of this server: "/" + the path without its leading slashes ("//host" is
            # another host to a browser)
            v = ("/" + url.path.lstrip("/") + (f"?{url.query}" if url.query else "")).encode(
                "latin-1")
        out.append((k, v))
    return out


def conform(model: type[BaseModel], value: Any, run_id: str, what: str,
            prepare=lambda v: v) -> BaseModel:
    """``prepare(value)`` as a ``model``; a value that does not fit (a hand-edited file) is the
    500 naming the run, the file and the field (``what``: 'incidents.json, incident 3'), not
    a ResponseValidationError's "internal error"."""
    try:
        return model.model_validate(prepare(value))
    except (ValidationError, ValueError, TypeError) as exc:
        reason = exc.errors()[0] if isinstance(exc, ValidationError) else {"msg": str(exc)}
        loc = ".".join(map(str, reason.get("loc", ())))
        where = f"{loc}: " if loc else ""
        raise ApiError(500, f"run {run_id!r}: {what} cannot be read ({where}{reason['msg']}); "
                            "rerun the analysis to rewrite it") from None


def stamped(inc: Any) -> Any:
    """start / end / confirmed as days, or as timestamps on sub-daily data (a --kpis run)."""
    if not isinstance(inc, dict):
        return inc
    out = dict(inc)
    for k in ("start", "end", "confirmed"):
        if k == "confirmed" and out.get(k) is None:   # runs written before 2026-12-06
            continue
        v = str(out.get(k))  # a day as a date: pydantic reads "2025-02-11" as a datetime first
        out[k] = datetime.fromisoformat(v) if len(v) > 10 else date.fromisoformat(v)
    return out
