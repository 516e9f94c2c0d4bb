"""Domain errors of the public API, each with its Google-style identity.

Every error a client can see is one of these; ``ichnaea.web.errors`` is the
one place that turns them into HTTP responses with the body

    {"error": {"errors": [{"domain": D, "reason": R, "message": M}],
               "code": C, "message": M}}

plus a top-level ``"details"`` object for parse errors that have details.
"""

from __future__ import annotations

from typing import Any, ClassVar


class ApiError(Exception):
    """Base of the errors that reach API clients."""

    code: ClassVar[int] = 500
    domain: ClassVar[str] = "global"
    reason: ClassVar[str] = "backendError"
    message: ClassVar[str] = "Internal Server Error"

    def __init__(self, details: dict[str, Any] | None = None) -> None:
        super().__init__(self.message)
        self.details = details

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "error": {
                "errors": [{"domain": self.domain, "reason": self.reason, "message": self.message}],
                "code": self.code,
                "message": self.message,
            }
        }
        if self.details:
            body["details"] = self.details
        return body


class InvalidApiKeyError(ApiError):
    code = 400
    domain = "usageLimits"
    reason = "keyInvalid"
    message = "Missing or invalid API key."


class DailyLimitExceededError(ApiError):
    code = 403
    domain = "usageLimits"
    reason = "dailyLimitExceeded"
    message = "You have exceeded your daily limit."


class LocationNotFoundError(ApiError):
    code = 404
    domain = "geolocation"
    reason = "notFound"
    message = "Not found"


class ParseError(ApiError):
    code = 400
    domain = "global"
    reason = "parseError"
    message = "Parse Error"


class ServiceUnavailableError(ApiError):
    code = 503
    domain = "global"
    reason = "serviceUnavailable"
    message = "Service Unavailable"


class PayloadTooLargeError(ApiError):
    code = 413
    domain = "global"
    reason = "payloadTooLarge"
    message = "Payload Too Large"


class RouteNotFoundError(ApiError):
    code = 404
    domain = "global"
    reason = "notFound"
    message = "Not found"


class MethodNotAllowedError(ApiError):
    code = 405
    domain = "global"
    reason = "methodNotAllowed"
    message = "Method Not Allowed"


class InternalError(ApiError):
    """An unexpected failure; the traceback goes to the log and Sentry, not the client."""
