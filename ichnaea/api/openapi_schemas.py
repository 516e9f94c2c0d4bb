"""The schemas of the API document: request bodies from the parsers' field tables, answers.

A locate field's schema lists every value stage A accepts, since any other
is a 400 ``parseError``: an integer field also takes numbers, numeric text
and booleans, as the original service did (``LOCATE_INTEGER``). A
submission field's schema gives the type a client should send, since the
submission parser drops a field it cannot read, never the report. Examples
are real bodies: the tests check each against its schema.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ichnaea.api.locate.schemas import LOCATE_FIELDS
from ichnaea.api.openapi_errors import CATALOGUE, error_example, error_schema
from ichnaea.errors import ApiError, LocationNotFoundError
from ichnaea.reports import formats as submit
from ichnaea.reports.fields import Field, Kind

Schema = dict[str, Any]

# A locate integer field: what stage A reads as an integer (see its docstring).
LOCATE_INTEGER: Schema = {
    "description": "An integer. Also read as one: a number (truncated toward zero), text "
    'holding an integer (" 01" is 1) and true or false (1 or 0). null, "", [] and {} '
    "mean the field is missing. Anything else is a parseError.",
    "anyOf": [
        {"type": ["integer", "number", "boolean", "null"]},
        # int()'s grammar; past 4,300 digits Python refuses the text.
        {"type": "string", "pattern": r"^\s*[+-]?\d+(_\d+)*\s*$", "maxLength": 4300},
        {"enum": ["", [], {}]},
    ],
}
# A locate flag: no value is refused (quirk Q7 of the original).
LOCATE_FLAG: Schema = {
    "description": 'A flag: false for false, 0, "false" and "0" (in any case), true for any '
    "other value; null means the default. No value is a parseError.",
}


def ref(name: str) -> Schema:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def _object(fields: tuple[Field, ...], render: Callable[[Field], Schema]) -> Schema:
    schema: Schema = {"type": "object", "properties": {f.name: render(f) for f in fields}}
    required = [f.name for f in fields if f.required]
    if required:
        schema["required"] = required
    return schema


def _locate(f: Field) -> Schema:
    """A locate field as stage A reads it: any other value is a parseError."""
    if f.kind is Kind.integer:
        schema = ref("LocateInteger")
    elif f.kind is Kind.boolean:
        schema = ref("LocateFlag")
    elif f.kind in (Kind.string, Kind.mac):
        schema = {"type": ["string", "null"]}
    elif f.kind is Kind.choice:
        schema = {"enum": [*f.choices, "", None]}
    elif f.kind is Kind.array:
        schema = {"type": "array", "items": _object(f.fields, _locate)}
    elif f.kind is Kind.object:
        schema = _object(f.fields, _locate)
    else:
        raise ValueError(f"no locate schema for {f.kind}")
    return {**schema, "description": f.description}


_SUBMIT_TYPES: dict[Kind, Schema] = {
    Kind.integer: {"type": ["integer", "null"]},
    Kind.timestamp: {"type": ["integer", "null"]},
    Kind.number: {"type": ["number", "null"]},
    Kind.string: {"type": ["string", "null"], "minLength": 1},
    Kind.mac: {"type": "string", "minLength": 1},
    Kind.datetime: {"type": ["string", "integer", "null"]},
}


def _submit(f: Field) -> Schema:
    """A submission field: a value of another type is dropped, never an error."""
    if f.kind is Kind.choice:
        schema: Schema = {"enum": [*f.choices, None]}
    elif f.kind is Kind.array:
        schema = {"type": ["array", "null"], "items": _object(f.fields, _submit)}
    elif f.kind is Kind.object:
        schema = {**_object(f.fields, _submit), "type": ["object", "null"]}
    else:
        schema = dict(_SUBMIT_TYPES[f.kind])
    return {**schema, "description": f.description}


# -- examples: real bodies, checked against their schemas by the tests

_WIFI_EXAMPLE = [
    {"macAddress": "01:23:45:67:89:ab", "signalStrength": -51, "channel": 11},
    {"macAddress": "01:23:45:67:89:cd", "signalStrength": -68},
]
_CELL_EXAMPLE = {
    "radioType": "lte",
    "mobileCountryCode": 262,
    "mobileNetworkCode": 1,
    "locationAreaCode": 46452,
    "cellId": 15833089,
    "signalStrength": -90,
}
GEOLOCATE_EXAMPLE = {"considerIp": True, "wifiAccessPoints": _WIFI_EXAMPLE}
_POSITION_EXAMPLE = {"latitude": 51.0, "longitude": -0.1, "accuracy": 10.0, "source": "gnss"}
_REPORT_EXAMPLE = {"timestamp": 1_700_000_000_000, "wifiAccessPoints": _WIFI_EXAMPLE}
_V0_REPORT_EXAMPLE = {
    "time": "2024-01-31T12:00:00Z",
    "lat": 51.0,
    "lon": -0.1,
    "accuracy": 10.0,
    "wifi": [{"key": "01:23:45:67:89:ab", "signal": -51}],
}


def component_schemas() -> dict[str, Schema]:
    """The named schemas of the document: bodies, answers and every error's body."""
    position = {"type": "number"}
    schemas: dict[str, Schema] = {
        "LocateInteger": LOCATE_INTEGER,
        "LocateFlag": LOCATE_FLAG,
        "GeolocateRequest": {
            **_object(LOCATE_FIELDS, _locate),
            "description": "What the client sees. Every field is optional (an empty body "
            "asks by IP address); unknown members are ignored.",
            "examples": [GEOLOCATE_EXAMPLE, {"cellTowers": [_CELL_EXAMPLE]}],
        },
        "GeolocateResponse": {
            "type": "object",
            "required": ["location", "accuracy"],
            "properties": {
                "location": {
                    "type": "object",
                    "required": ["lat", "lng"],
                    "properties": {
                        "lat": {**position, "minimum": -90, "maximum": 90},
                        "lng": {**position, "minimum": -180, "maximum": 180},
                    },
                    "additionalProperties": False,
                },
                "accuracy": {
                    **position,
                    "minimum": 0,
                    "description": "Radius in metres around the position that holds "
                    "the true position with the service's stated confidence: 95 % by "
                    "default (the W3C Geolocation API's), 68 % with "
                    "LOCATE_CONFIDENCE=68 (Android's). Calibrated on synthetic worlds "
                    "for answers from the service's own station data; GeoIP and "
                    "fallback answers carry their source's radius.",
                },
                "fallback": {
                    "enum": ["ipf", "lacf"],
                    "description": "Present when a fallback answered: ipf the IP address, "
                    "lacf a cell's location area.",
                },
            },
            "additionalProperties": False,
            "examples": [{"location": {"lat": 51.0, "lng": -0.1}, "accuracy": 24.5}],
        },
        "CountryResponse": {
            "type": "object",
            "required": ["country_code", "country_name"],
            "properties": {
                "country_code": {"type": "string", "description": "GENC alpha-2 code."},
                "country_name": {"type": "string"},
                "fallback": {"enum": ["ipf", "lacf"]},
            },
            "additionalProperties": False,
            "examples": [{"country_code": "GB", "country_name": "United Kingdom"}],
        },
        "BatchRequest": {
            "type": "object",
            "required": ["queries"],
            "properties": {
                "queries": {
                    "type": "array",
                    "items": ref("GeolocateRequest"),
                    "description": "At most MAX_BATCH_QUERIES (1,000 by default) queries; a "
                    "query that does not parse gets its parseError body in its place.",
                }
            },
            "examples": [{"queries": [GEOLOCATE_EXAMPLE, {"cellTowers": [_CELL_EXAMPLE]}]}],
        },
        "BatchResponse": {
            "type": "object",
            "required": ["results"],
            "properties": {
                "results": {
                    "type": "array",
                    "description": "One per query, in order: its /v1/geolocate answer or its "
                    "error body (notFound, parseError, dailyLimitExceeded).",
                    "items": {"anyOf": [ref("GeolocateResponse"), ref("Error")]},
                }
            },
            "additionalProperties": False,
            "examples": [
                {
                    "results": [
                        {"location": {"lat": 51.0, "lng": -0.1}, "accuracy": 24.5},
                        error_example(LocationNotFoundError),
                    ]
                }
            ],
        },
        "Error": error_schema(ApiError, any_reason=True),
        "LbHeartbeat": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "OK"}},
            "additionalProperties": False,
        },
        "Heartbeat": _heartbeat_schema(),
        "Version": {
            "type": "object",
            "required": ["source", "version", "commit", "build"],
            "properties": {k: {"type": "string"} for k in ("source", "version", "commit", "build")},
            "additionalProperties": False,
        },
        "Contribute": {
            "type": "object",
            "description": "The project's metadata (https://www.contributejson.org).",
            "properties": {"name": {"type": "string"}, "description": {"type": "string"}},
        },
        "OpenApiDocument": {
            "type": "object",
            "required": ["openapi", "info", "paths"],
            "properties": {"openapi": {"const": "3.1.0"}},
        },
        "SubmitAnswer": {"type": "object", "maxProperties": 0, "examples": [{}]},
    }
    for version, fields, example in (
        ("V2", submit.REPORT_FIELDS, {**_REPORT_EXAMPLE, "position": _POSITION_EXAMPLE}),
        ("V1", submit.V1_REPORT_FIELDS, {**_REPORT_EXAMPLE, **_POSITION_EXAMPLE}),
        ("V0", submit.V0_REPORT_FIELDS, _V0_REPORT_EXAMPLE),
    ):
        schemas[f"Submit{version}Request"] = {
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": {
                    "type": "array",
                    "maxItems": submit.MAX_REPORTS_PER_SUBMISSION,
                    "items": ref(f"Report{version}"),
                    "description": "The reports; entries that are not objects are skipped.",
                }
            },
            "examples": [{"items": [example]}],
        }
        schemas[f"Report{version}"] = {
            **_object(fields, _submit),
            "description": "One observation. A field that cannot be read is dropped, never "
            "the report; a report without any network is skipped. Java's "
            "Integer.MAX_VALUE and MIN_VALUE mean unknown.",
        }
    for cls, _, _ in CATALOGUE:
        schemas[cls.__name__] = error_schema(cls)
    return schemas


def _heartbeat_schema() -> Schema:
    def check(**extra: Schema) -> Schema:
        return {
            "type": "object",
            "required": ["up", "time"],
            "properties": {
                "up": {"type": ["boolean", "null"], "description": "null: the check raised."},
                "time": {"type": "integer", "description": "Milliseconds; -1 if it raised."},
                **extra,
            },
        }

    return {
        "type": "object",
        "required": ["database", "geoip", "redis"],
        "properties": {
            "database": check(alembic_version={"type": "string"}),
            "geoip": check(age_in_days={"type": "integer"}, version={"type": "string"}),
            "redis": check(),
            "station_index": {
                "type": "object",
                "description": "The station index, when on: reported, never a reason for 503.",
                "required": ["up", "state"],
                "properties": {
                    "up": {"type": "boolean"},
                    "state": {"enum": ["starting", "building", "ready", "failed"]},
                    "age_s": {"type": "number"},
                    "stations": {"type": "integer"},
                    "overlay_rows": {"type": "integer"},
                    "refreshed_s_ago": {"type": "number"},
                    "error": {"type": "string"},
                },
            },
        },
    }
