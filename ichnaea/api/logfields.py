"""Fields the API handlers add to the request's log line (written by ``ichnaea.web.front``)."""

from __future__ import annotations

from typing import Any

# The request-state attribute holding the line's extra fields (a dict the
# middleware puts there for each request).
LOG_FIELDS_KEY = "log_fields"


def note(request_state: Any, **fields: Any) -> None:
    """Add ``fields`` to the request's log line (``request_state`` is ``request.state``)."""
    found = getattr(request_state, LOG_FIELDS_KEY, None)
    if isinstance(found, dict):
        found.update(fields)
