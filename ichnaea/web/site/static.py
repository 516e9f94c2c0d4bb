"""The website's static files, addressed by content hash and cached for a year.

At start-up every file under ``static/`` (the site's own CSS and scripts,
and the libraries :mod:`ichnaea.web.site.vendor` installed in
``static/vendor/``) is read into memory and gets a URL with the first 16
hex digits of its SHA-256 before the extension: ``site.css`` is served as
``/static/site.3f2a….css``. A changed file gets a new URL, so responses
carry ``Cache-Control: public, max-age=31536000, immutable``; an old or
unknown name is a 404.

Stylesheets are rewritten before they are hashed: a relative ``url(…)`` that
names another static file (Leaflet's ``images/layers.png``) points at that
file's hashed name, so the browser caches the images as long as the CSS.
Text files over 1 KiB are also kept gzip-compressed and sent so to clients
that accept it (Leaflet's script: 147 KB, 43 KB compressed).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

STATIC_DIR = Path(__file__).parent / "static"
URL_PREFIX = "/static/"
IMMUTABLE = "public, max-age=31536000, immutable"
HASH_CHARS = 16
GZIP_MIN_BYTES = 1024
SERVED_SUFFIXES = frozenset({".css", ".js", ".png", ".svg", ".ico", ".txt"})
TEXT_SUFFIXES = frozenset({".css", ".js", ".svg", ".txt"})
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain"}
CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")\s]+)\1\s*\)""")


@dataclass(frozen=True, slots=True)
class StaticFile:
    content: bytes
    gzipped: bytes | None
    media_type: str
    etag: str


def _media_type(name: str) -> str:
    suffix = posixpath.splitext(name)[1]
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


class StaticFiles:
    """The files of one directory by logical name (``vendor/leaflet.js``) and hashed URL."""

    def __init__(self, directory: Path | None = None) -> None:
        directory = directory or STATIC_DIR
        self._urls: dict[str, str] = {}  # logical name -> hashed name
        self._files: dict[str, StaticFile] = {}  # hashed name -> file
        names = sorted(
            path.relative_to(directory).as_posix()
            for path in directory.rglob("*")
            if path.is_file() and path.suffix in SERVED_SUFFIXES
        )
        # Stylesheets last: they refer to the others' hashed names.
        for name in sorted(names, key=lambda n: n.endswith(".css")):
            content = (directory / name).read_bytes()
            if name.endswith(".css"):
                content = self._rewrite_css(name, content)
            self._add(name, content)

    def _rewrite_css(self, name: str, content: bytes) -> bytes:
        base = posixpath.dirname(name)

        def hashed(match: re.Match[str]) -> str:
            ref = match.group(2)
            target = posixpath.normpath(posixpath.join(base, ref))
            if ref.startswith(("#", "/", "data:")) or ":" in ref or target not in self._urls:
                return match.group(0)
            return f"url({posixpath.relpath(self._urls[target], base or '.')})"

        return CSS_URL.sub(hashed, content.decode("utf-8")).encode("utf-8")

    def _add(self, name: str, content: bytes) -> None:
        digest = hashlib.sha256(content).hexdigest()[:HASH_CHARS]
        stem, suffix = posixpath.splitext(name)
        hashed = f"{stem}.{digest}{suffix}"
        compress = suffix in TEXT_SUFFIXES and len(content) > GZIP_MIN_BYTES
        self._urls[name] = hashed
        self._files[hashed] = StaticFile(
            content,
            gzip.compress(content, compresslevel=9, mtime=0) if compress else None,
            _media_type(name),
            f'"{digest}"',
        )

    def __contains__(self, name: object) -> bool:
        return name in self._urls

    def path(self, name: str) -> str:
        """The URL path of a file by its logical name; KeyError if there is none."""
        return URL_PREFIX + self._urls[name]

    async def serve(self, request: Request) -> Response:
        found = self._files.get(request.path_params["name"])
        if found is None:
            raise HTTPException(404)
        headers = {
            "Cache-Control": IMMUTABLE,
            "ETag": found.etag,
            "Vary": "Accept-Encoding",
            "X-Content-Type-Options": "nosniff",
        }
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=headers)
        body = found.content
        if found.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            body = found.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=found.media_type, headers=headers)
