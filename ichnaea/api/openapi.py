"""The OpenAPI 3.1 document of the public API, built from what the endpoints use.

Nothing in it is written twice: request bodies come from the parsers'
field tables (``ichnaea.reports.fields``: the locate tables in
``ichnaea.api.locate.schemas``, the submission tables in
``ichnaea.reports.formats``), error bodies and their examples from the
error classes (``ichnaea.errors``) and the parsers themselves, limits from
the constants the code enforces. ``tests/api/test_openapi.py`` holds the
parsers to the document and ``tests/api/test_schemathesis.py`` the running
server.

The schemas are in ``ichnaea.api.openapi_schemas`` (how a locate and a
submission field differ: refused or dropped), the errors in
``ichnaea.api.openapi_errors``; this module lays out the paths.

``components["x-error-catalogue"]`` lists every error a client can see
(reason, status, meaning, when) for the documentation page.
:func:`openapi_document` builds the document once per process.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

import ichnaea
from ichnaea.api.keys import KEY_PATTERN
from ichnaea.api.openapi_errors import CATALOGUE, error_example
from ichnaea.api.openapi_schemas import Schema, component_schemas, ref
from ichnaea.errors import (
    ApiError,
    DailyLimitExceededError,
    InternalError,
    InvalidApiKeyError,
    LocationNotFoundError,
    ParseError,
    PayloadTooLargeError,
    ServiceUnavailableError,
)
from ichnaea.reports.formats import MAX_REPORTS_PER_SUBMISSION

JSON = "application/json"


# -- operations

_CORS_HEADERS = {
    "Access-Control-Allow-Origin": {"$ref": "#/components/headers/AccessControlAllowOrigin"},
    "Access-Control-Max-Age": {"$ref": "#/components/headers/AccessControlMaxAge"},
}
# Any request may be too large, and any may meet a bug.
_ALWAYS: tuple[type[ApiError], ...] = (PayloadTooLargeError, InternalError)


def _responses(
    answers: dict[str, tuple[str, Schema | None]],
    errors: tuple[type[ApiError], ...],
    *,
    cors: bool,
    head: bool,
) -> dict[str, Any]:
    """``answers``: status → (description, schema or None for no body)."""
    headers = {"headers": _CORS_HEADERS} if cors else {}
    responses: dict[str, Any] = {}
    for status, (description, schema) in answers.items():
        response: dict[str, Any] = {"description": description, **headers}
        if schema is not None and not head:
            response["content"] = {JSON: {"schema": schema}}
        responses[status] = response
    by_status: dict[int, list[type[ApiError]]] = {}
    for cls in (*errors, *_ALWAYS):
        by_status.setdefault(cls.code, []).append(cls)
    for code, classes in sorted(by_status.items()):
        reasons = ", ".join(cls.reason for cls in classes)
        response = {"description": f"Error: {reasons}.", **headers}
        if code == 503:
            response["headers"] = {
                **headers.get("headers", {}),
                "Retry-After": {"$ref": "#/components/headers/RetryAfter"},
            }
        if not head:
            refs = [ref(cls.__name__) for cls in classes]
            schema = refs[0] if len(refs) == 1 else {"anyOf": refs}
            examples = {
                cls.__name__: {"$ref": f"#/components/examples/{cls.__name__}"} for cls in classes
            }
            response["content"] = {JSON: {"schema": schema, "examples": examples}}
        responses[str(code)] = response
    return responses


def _key(required: bool) -> dict[str, Any]:
    return {"$ref": f"#/components/parameters/{'ApiKey' if required else 'SubmitKey'}"}


def _path(
    name: str,
    tag: str,
    methods: tuple[str, ...],
    *,
    summary: str,
    description: str = "",
    answers: dict[str, tuple[str, Schema | None]],
    errors: tuple[type[ApiError], ...] = (),
    body: Schema | None = None,
    empty_body: bool = False,
    key: bool | None = None,
    cors: bool = False,
) -> dict[str, Any]:
    """The path item of one route: the same operation for each method (HEAD without bodies).

    ``empty_body``: an empty body is read as ``{}``; otherwise it is a parseError.
    """
    item: dict[str, Any] = {}
    for method in methods:
        operation: dict[str, Any] = {
            "operationId": f"{name}_{method}",
            "tags": [tag],
            "summary": summary,
            "responses": _responses(answers, errors, cors=cors, head=method == "head"),
        }
        if description:
            operation["description"] = description
        if key is not None:
            operation["parameters"] = [_key(key)]
        if body is not None:
            operation["requestBody"] = {
                "required": not empty_body,
                "description": "JSON (Content-Type is not checked), optionally with "
                "Content-Encoding: gzip." + (" An empty body means {}." if empty_body else ""),
                "content": {JSON: {"schema": body}},
            }
        item[method] = operation
    if cors:
        item["options"] = {
            "operationId": f"{name}_options",
            "tags": [tag],
            "summary": "CORS preflight",
            "description": "Always 200 with an empty body; request headers are not inspected.",
            "responses": {"200": {"description": "Preflight answer.", "headers": _CORS_HEADERS}},
        }
    return item


# What the API and health routes serve (ichnaea.web.app).
_METHODS = ("get", "head", "post")


def _submit_path(name: str, version: str, summary: str) -> dict[str, Any]:
    # The v0 endpoint answers 204 with no body, as the original did.
    answer = ("Accepted.", None) if version == "V0" else ("Accepted.", ref("SubmitAnswer"))
    return _path(
        name,
        "submit",
        _METHODS,
        summary=summary,
        description="Queued for the data pipeline; the answer comes once the reports are "
        f"in the queue. At most {MAX_REPORTS_PER_SUBMISSION:,} reports.",
        answers={"204" if version == "V0" else "200": answer},
        errors=(ParseError, DailyLimitExceededError, ServiceUnavailableError),
        body=ref(f"Submit{version}Request"),
        key=False,
        cors=True,
    )


def _paths() -> dict[str, Any]:
    return {
        "/v1/geolocate": _path(
            "geolocate",
            "locate",
            _METHODS,
            summary="Locate a device",
            description="From the Wi-Fi access points, cells and Bluetooth beacons it sees, "
            "and its IP address. Compatible with the Google Geolocation API. HEAD runs the "
            "lookup too (and counts) but answers no body.",
            answers={"200": ("A position.", ref("GeolocateResponse"))},
            errors=(
                InvalidApiKeyError,
                ParseError,
                DailyLimitExceededError,
                LocationNotFoundError,
            ),
            body=ref("GeolocateRequest"),
            empty_body=True,
            key=True,
            cors=True,
        ),
        "/v1/geolocate/batch": _path(
            "geolocate_batch",
            "locate",
            ("post",),
            summary="Locate many devices in one request",
            description="Each query counts once against the key's /v1/geolocate daily "
            "limit; queries past it get a dailyLimitExceeded body in their place. One "
            "query's error never fails the batch.",
            answers={"200": ("One result per query.", ref("BatchResponse"))},
            errors=(InvalidApiKeyError, ParseError),
            body=ref("BatchRequest"),
            key=True,
            cors=True,
        ),
        "/v1/country": _path(
            "country",
            "locate",
            _METHODS,
            summary="The country of a device",
            description="The same request as /v1/geolocate; never rate limited.",
            answers={"200": ("A country.", ref("CountryResponse"))},
            errors=(InvalidApiKeyError, ParseError, LocationNotFoundError),
            body=ref("GeolocateRequest"),
            empty_body=True,
            key=True,
            cors=True,
        ),
        "/v2/geosubmit": _submit_path("geosubmit_v2", "V2", "Submit observations"),
        "/v1/geosubmit": _submit_path("geosubmit_v1", "V1", "Submit observations (v1 schema)"),
        "/v1/submit": _submit_path("submit_v0", "V0", "Submit observations (v0 schema)"),
        "/__heartbeat__": _path(
            "heartbeat",
            "service",
            _METHODS,
            summary="Deep health check",
            answers={
                "200": ("Every backend is up.", ref("Heartbeat")),
                "503": ("A backend is down (the same body).", ref("Heartbeat")),
            },
        ),
        "/__lbheartbeat__": _path(
            "lbheartbeat",
            "service",
            _METHODS,
            summary="Load balancer check",
            answers={"200": ("Always.", ref("LbHeartbeat"))},
        ),
        "/__version__": _path(
            "version",
            "service",
            _METHODS,
            summary="Build information",
            answers={"200": ("The build.", ref("Version"))},
        ),
        "/contribute.json": _path(
            "contribute",
            "service",
            _METHODS,
            summary="Project metadata",
            answers={"200": ("contribute.json.", ref("Contribute"))},
        ),
        "/openapi.json": _path(
            "openapi",
            "service",
            ("get", "head"),
            summary="This document",
            answers={"200": ("The OpenAPI document.", ref("OpenApiDocument"))},
            cors=True,
        ),
    }


_DESCRIPTION = """\
Geolocation from Wi-Fi, cells, Bluetooth and IP addresses, and the submission of
GNSS-positioned observations: a successor of Mozilla Location Service.

Errors have the Google-style body
`{"error": {"errors": [{"domain", "reason", "message"}], "code", "message"}}`,
with a top-level `details` for parse errors and for limits
(`components.x-error-catalogue` lists them all). The API paths answer CORS
requests from any origin; other methods than the documented ones give 405
`methodNotAllowed` without CORS headers. Request bodies are limited to
`MAX_BODY_BYTES` (2 MiB by default), gzip bodies to `MAX_DECOMPRESSED_BYTES`
once inflated."""


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every public endpoint; built once, shared: do not modify."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Ichnaea", "version": ichnaea.__version__, "description": _DESCRIPTION},
        "tags": [
            {"name": "locate", "description": "Positions and countries."},
            {"name": "submit", "description": "Contributing observations."},
            {"name": "service", "description": "Health, build and metadata."},
        ],
        "paths": _paths(),
        "components": {
            "schemas": component_schemas(),
            "parameters": {
                "ApiKey": {
                    "name": "key",
                    "in": "query",
                    "required": True,
                    "description": "The API key: 4 to 40 letters, digits and dashes, "
                    "case-sensitive. Missing, malformed, unknown or without permission for "
                    "this API: 400 keyInvalid. The last one counts when repeated.",
                    "schema": {"type": "string", "pattern": KEY_PATTERN},
                },
                "SubmitKey": {
                    "name": "key",
                    "in": "query",
                    "required": False,
                    "description": "An API key: a known one counts against its daily limit "
                    "and tags the reports; without one (or with an unknown one) the reports "
                    "are stored anonymously.",
                    "schema": {"type": "string"},
                },
            },
            "headers": {
                "AccessControlAllowOrigin": {
                    "required": True,
                    "schema": {"const": "*"},
                    "description": "CORS: any origin.",
                },
                "AccessControlMaxAge": {
                    "required": True,
                    "schema": {"type": "string", "pattern": r"^\d+$"},
                    "description": "CORS: seconds a preflight answer may be cached.",
                },
                "RetryAfter": {
                    "required": True,
                    "schema": {"type": "string", "pattern": r"^\d+$"},
                    "description": "Seconds to wait before sending the same request again.",
                },
            },
            "examples": {
                cls.__name__: {"summary": cls.reason, "value": error_example(cls)}
                for cls, _, _ in CATALOGUE
            },
            "x-error-catalogue": [
                {
                    "reason": cls.reason,
                    "domain": cls.domain,
                    "status": cls.code,
                    "message": cls.message,
                    "meaning": meaning,
                    "when": when,
                    "schema": f"#/components/schemas/{cls.__name__}",
                }
                for cls, meaning, when in CATALOGUE
            ],
        },
    }


@functools.cache
def _document_bytes() -> bytes:
    return orjson.dumps(openapi_document())


async def openapi_json(request: Request) -> Response:
    """``/openapi.json``: the document, rendered once per process."""
    return Response(_document_bytes(), media_type=JSON)
