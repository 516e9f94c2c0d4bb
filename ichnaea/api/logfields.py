"""Fields the API handlers add to the request's log line (written by ``ichnaea.web.front``)."""

from __future__ import annotations

from typing import Any, Protocol

# The request-state entry holding the line's extra fields (a dict the front
# door puts there for each request).
LOG_FIELDS_KEY = "log_fields"


class HasScope(Protocol):
    @property
    def scope(self) -> Any: ...


def note(request: HasScope | None, **fields: Any) -> None:
    """Add ``fields`` to the request's log line (read from the scope's state, as
    ``request.state`` would give it, without building that wrapper)."""
    if request is None:
        return
    state = request.scope.get("state")
    found = state.get(LOG_FIELDS_KEY) if isinstance(state, dict) else None
    if isinstance(found, dict):
        found.update(fields)
