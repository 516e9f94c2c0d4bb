"""The error catalogue of the API document: every error a client can see.

Each entry is an error class of ``ichnaea.errors`` (its status, domain,
reason and message) with what it means and when the service gives it.
The document (``ichnaea.api.openapi``) renders each class as the schema
of its body, with an example made by the code that raises it, and the
catalogue as ``components["x-error-catalogue"]``. A test fails when an
error class has no entry.
"""

from __future__ import annotations

from typing import Any

from ichnaea.api.locate.schemas import parse_locate_request
from ichnaea.errors import (
    ApiError,
    DailyLimitExceededError,
    InternalError,
    InvalidApiKeyError,
    LocationNotFoundError,
    MethodNotAllowedError,
    ParseError,
    PayloadTooLargeError,
    RouteNotFoundError,
    ServiceUnavailableError,
)
from ichnaea.reports.formats import MAX_REPORTS_PER_SUBMISSION, parse_v2

Schema = dict[str, Any]

# (error, meaning, when), in the order a reader meets them.
CATALOGUE: tuple[tuple[type[ApiError], str, str], ...] = (
    (
        InvalidApiKeyError,
        "The API key is missing, malformed or unknown, or may not use this API.",
        "/v1/geolocate, /v1/geolocate/batch and /v1/country, before the body is read. "
        "The submit endpoints never give it: without a known key they store the data "
        "anonymously.",
    ),
    (
        ParseError,
        "The body could not be read: details.decode says why it could not be decoded "
        "(gzip, charset, JSON), details.validation maps the dotted path of a field of the "
        "wrong type to a message; a submission without an items list says so there.",
        "Every endpoint that reads a body. Locate fields are type-checked; submission fields "
        "of the wrong type are dropped instead, and an empty submission body has no details.",
    ),
    (
        DailyLimitExceededError,
        "The key has used up its requests for today (UTC) on this path.",
        "/v1/geolocate and the submit endpoints, for a key with a daily limit, before the "
        "body is read. In a batch, each query past the limit gets this body in its place.",
    ),
    (
        LocationNotFoundError,
        "No source could answer: the networks are unknown and no fallback applies.",
        "/v1/geolocate and /v1/country; in a batch, in the place of that query.",
    ),
    (
        PayloadTooLargeError,
        "The body is too large: details name the limit when it is a count.",
        f"A body over MAX_BODY_BYTES, a gzip body inflating past MAX_DECOMPRESSED_BYTES, "
        f"more than {MAX_REPORTS_PER_SUBMISSION:,} reports in a submission (nothing is "
        f"queued) or more than MAX_BATCH_QUERIES queries in a batch: split it.",
    ),
    (
        ServiceUnavailableError,
        "The reports could not be queued (Redis unreachable, or the backlog full); nothing "
        "was stored.",
        "The submit endpoints: send the same request again after Retry-After seconds.",
    ),
    (
        RouteNotFoundError,
        "There is no such path (paths match exactly: no trailing slash).",
        "Any request to an unknown path.",
    ),
    (
        MethodNotAllowedError,
        "The path does not serve this method; the Allow header lists those it does.",
        "Any path, with another method than its documented ones (no CORS headers).",
    ),
    (
        InternalError,
        "An unexpected failure, logged and reported on the server; the body reveals nothing.",
        "Any request. A bug: it should never happen.",
    ),
)

_STRINGS: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
# The ``details`` of the errors that carry them.
_DETAILS: dict[type[ApiError], Schema] = {
    ParseError: {
        "type": "object",
        "properties": {
            "decode": {"type": "string", "description": "Why the body could not be decoded."},
            "validation": {
                **_STRINGS,
                "description": "Dotted path of the field (e.g. cellTowers.0.radioType, "
                '"" for the whole body) → what is wrong with it.',
            },
        },
        "additionalProperties": False,
    },
    PayloadTooLargeError: {**_STRINGS, "description": "The list that is too long → the limit."},
}


def error_schema(cls: type[ApiError], *, any_reason: bool = False) -> Schema:
    """The schema of ``cls``'s body; with ``any_reason``, of any error's body."""

    def fixed(value: Any, kind: str) -> Schema:
        return {"type": kind} if any_reason else {"const": value}

    error: Schema = {
        "type": "object",
        "required": ["errors", "code", "message"],
        "properties": {
            "errors": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {
                    "type": "object",
                    "required": ["domain", "reason", "message"],
                    "properties": {
                        "domain": fixed(cls.domain, "string"),
                        "reason": fixed(cls.reason, "string"),
                        "message": fixed(cls.message, "string"),
                    },
                    "additionalProperties": False,
                },
            },
            "code": fixed(cls.code, "integer"),
            "message": fixed(cls.message, "string"),
        },
        "additionalProperties": False,
    }
    properties: Schema = {"error": error}
    details = {"type": "object"} if any_reason else _DETAILS.get(cls)
    if details is not None:
        properties["details"] = details
    schema: Schema = {
        "type": "object",
        "required": ["error"],
        "properties": properties,
        "additionalProperties": False,
    }
    if not any_reason:
        schema["description"] = f"{cls.reason} ({cls.code})."
        schema["examples"] = [error_example(cls)]
    return schema


def parse_error_example(body: Any) -> dict[str, Any]:
    """The parseError body the locate parser gives ``body``."""
    try:
        parse_locate_request(body)
    except ParseError as exc:
        return exc.body()
    raise ValueError(f"{body!r} parses: no example of a parse error")


def error_example(cls: type[ApiError]) -> dict[str, Any]:
    """A body of ``cls`` as the service gives it: made by the code that raises it when the
    error carries details."""
    if cls is ParseError:
        return parse_error_example({"wifiAccessPoints": [{"signalStrength": "strong"}]})
    if cls is PayloadTooLargeError:
        try:
            parse_v2({"items": [{}] * (MAX_REPORTS_PER_SUBMISSION + 1)})
        except PayloadTooLargeError as exc:
            return exc.body()
        raise ValueError("a submission over the limit was accepted")
    return cls().body()
