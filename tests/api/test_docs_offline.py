"""A real `shocklab serve` process: /docs (Swagger UI) loads its JavaScript, CSS and favicon from
the server itself, never from a CDN ("no network at run time"; offline users got a blank /docs
page when the assets came from cdn.jsdelivr.net). ReDoc, whose bundle fetches its logo from its
own CDN, is off."""

from __future__ import annotations

import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from tests import localserver


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:  # noqa: S310 - loopback only
            return r.status, r.headers.get("content-type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read()


class _Assets(HTMLParser):
    """Every URL a page loads by itself: <script src>, <link href>, <img src>."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in {"script": ("src",), "link": ("href",), "img": ("src",)}.get(tag, ()):
            if a.get(key):
                self.urls.append(a[key])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("docs")
    (base / "reports").mkdir()
    (base / "runs").mkdir()
    with localserver.shocklab_serve(base / "reports", base / "runs", base) as url:
        yield url


def test_docs_page_loads_its_assets_from_the_server_itself(server):
    page = "/docs"
    code, ctype, body = _get(server + page)
    assert code == 200 and ctype.startswith("text/html"), (code, ctype)
    html = body.decode()
    parser = _Assets()
    parser.feed(html)
    assert parser.urls, f"{page} loads no script or stylesheet"
    origin = urlsplit(server).netloc
    seen = set()
    for ref in parser.urls:
        url = urljoin(server + page, ref)
        assert urlsplit(url).netloc == origin, f"{page} loads {ref} from another host"
        code, ctype, content = _get(url)
        assert code == 200 and content.strip(), (ref, code)
        suffix = Path(urlsplit(url).path).suffix
        kind = {".js": "javascript", ".css": "text/css", ".png": "image/png"}[suffix]
        assert kind in ctype, (ref, ctype)
        seen.add(suffix)
    assert {".js", ".css"} <= seen, parser.urls
    assert "cdn.jsdelivr.net" not in html   # not even as a fallback
    # Swagger UI's default asks validator.swagger.io for a badge image; null turns that off
    assert '"validatorUrl": null' in html


def test_redoc_is_off(server):
    code, ctype, body = _get(server + "/redoc")
    assert code == 404 and ctype.startswith("application/json"), (code, ctype, body[:200])


def test_the_asset_mount_is_read_only(server):
    req = urllib.request.Request(server + "/docs/static/swagger-ui.css", data=b"x", method="PUT")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:  # noqa: S310 - loopback only
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    assert status == 405
