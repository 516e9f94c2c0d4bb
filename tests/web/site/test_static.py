"""Content-hashed static files (ichnaea.web.site.static); served through the app in
tests/web/test_site.py."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from ichnaea.web.site.static import StaticFiles


def test_stylesheet_urls_point_at_hashed_files(tmp_path: Path) -> None:
    (tmp_path / "lib" / "img").mkdir(parents=True)
    (tmp_path / "lib" / "img" / "a.png").write_bytes(b"png")
    (tmp_path / "lib" / "x.css").write_text(
        ".a{background:url(img/a.png)} .b{background:url('img/gone.png')} "
        ".c{behavior:url(#default#VML)} .d{background:url(data:image/png;base64,AA==)}"
    )
    static = StaticFiles(tmp_path)
    app = Starlette(routes=[Route("/static/{name:path}", static.serve)])
    with TestClient(app) as client:
        css = client.get(static.path("lib/x.css")).text
        image = static.path("lib/img/a.png")
        assert f"url(img/{image.rsplit('/', 1)[1]})" in css
        assert client.get(image).content == b"png"
    assert "url('img/gone.png')" in css and "url(#default#VML)" in css
    assert "url(data:image/png;base64,AA==)" in css
