"""JSON responses: fast ones for the service's own answers, ASCII ones for the client's text.

:class:`AnswerResponse` renders with orjson: locate, country and submit
answers hold only the service's own numbers and names, which orjson
writes as the standard library would (shortest round-trip floats, UTF-8),
several times faster. Error messages (and a batch's per-item errors) may quote the request, and a
JSON string may hold an unpaired surrogate escape (``"\\ud800"``) that UTF-8
cannot encode. Escaped to ASCII, such a body is always valid JSON and never
fails to render (found by ``benchmarks/fuzz_api.py``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse


class AnswerResponse(JSONResponse):
    """A compact UTF-8 JSON body of the service's own values, rendered by orjson.

    Its two headers are written directly: Starlette's general header setup
    (``init_headers``) cost more than rendering the body.
    """

    def __init__(self, content: Any, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body = orjson.dumps(content)
        self.raw_headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ]

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class AsciiJSONResponse(JSONResponse):
    """A compact JSON body escaped to ASCII."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")
