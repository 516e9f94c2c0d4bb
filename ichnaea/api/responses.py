"""JSON responses that can carry the client's own text.

Error messages (and a batch's per-item errors) may quote the request, and a
JSON string may hold an unpaired surrogate escape (``"\\ud800"``) that UTF-8
cannot encode. Escaped to ASCII, such a body is always valid JSON and never
fails to render (found by ``benchmarks/fuzz_api.py``).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse


class AsciiJSONResponse(JSONResponse):
    """A compact JSON body escaped to ASCII."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")
