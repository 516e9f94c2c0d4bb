"""The API document (``ichnaea.api.openapi``) against the parsers and routes it describes.

The document is built from the parsers' field tables; these tests hold the
parsers to the document itself, so that a parser reading a field the
document does not list, a documented field the parser ignores, or a
documented type the parser treats otherwise fails here:

* the keys each parser reads, recorded by dicts that log their lookups,
  are the documented members at every level of every request body;
* every value of a pool of JSON values is accepted by the locate parser
  exactly when the documented schema of the field accepts it, and refused
  with the field's documented path in ``details.validation`` otherwise
  (with plain dicts, so the compiled fast paths take their share);
* a documented value of a submission field changes the report, and a value
  no schema allows (a list, an object) is dropped without an error.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route
from starlette.testclient import TestClient

from ichnaea.api.locate.batch import parse_batch
from ichnaea.api.locate.schemas import parse_locate_request
from ichnaea.api.openapi import openapi_document
from ichnaea.api.openapi_errors import CATALOGUE
from ichnaea.config import Settings
from ichnaea.errors import ApiError, ParseError
from ichnaea.reports.formats import parse_v0, parse_v1, parse_v2
from ichnaea.web.app import API_PATHS, create_app

Schema = dict[str, Any]
# A place in a body: member names, "*" for the entries of a list.
Where = tuple[str, ...]
NOW = 1_700_000_000_000

DOC = openapi_document()
SCHEMAS = DOC["components"]["schemas"]


def resolve(schema: Schema) -> Schema:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def is_valid(schema: Schema, value: Any) -> bool:
    """Whether the documented ``schema`` allows ``value``."""
    root = {"allOf": [schema], "components": DOC["components"]}
    return bool(jsonschema.Draft202012Validator(root).is_valid(value))


def members(schema: Schema, where: Where = ()) -> Iterator[tuple[Where, str, Schema]]:
    """Every documented member of a body: its place, its name and its schema."""
    schema = resolve(schema)
    for name, member in schema.get("properties", {}).items():
        yield where, name, member
        inner = resolve(member)
        if "items" in inner:
            yield from members(inner["items"], (*where, name, "*"))
        elif "properties" in inner:
            yield from members(inner, (*where, name))


def good(schema: Schema) -> Any:
    """A value of ``schema``'s documented type the parsers understand."""
    schema = resolve(schema)
    if "enum" in schema:
        return next(v for v in schema["enum"] if v not in (None, ""))
    if "anyOf" in schema:
        return good(schema["anyOf"][0])
    kinds = schema.get("type", "boolean")
    kind = kinds if isinstance(kinds, str) else kinds[0]
    if kind == "array":
        return [good(schema["items"])]
    if kind == "object":
        return {name: good(schema["properties"][name]) for name in schema.get("required", [])}
    # An integer that is also a valid time (and not the parsers' "now").
    return {"integer": NOW - 1, "number": 1.5, "string": "2024-01-31T12:00:00Z"}[kind]


def request_schema(path: str) -> Schema:
    body = DOC["paths"][path]["post"]["requestBody"]
    schema: Schema = body["content"]["application/json"]["schema"]
    return schema


# -- the document


def test_document_is_valid_openapi_3_1() -> None:
    validate(DOC)
    assert DOC["openapi"] == "3.1.0"


def test_every_example_matches_its_schema() -> None:
    for name, schema in SCHEMAS.items():
        for example in schema.get("examples", []):
            assert is_valid(schema, example), name
    checked = 0
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                media = response.get("content", {}).get("application/json", {})
                for ref in media.get("examples", {}).values():
                    example = DOC["components"]["examples"][ref["$ref"].rsplit("/", 1)[1]]
                    assert is_valid(media["schema"], example["value"]), (path, method, status)
                    checked += 1
    assert checked > 0


def test_every_error_class_is_in_the_catalogue() -> None:
    def subclasses(cls: type[ApiError]) -> set[type[ApiError]]:
        return {cls} | {s for sub in cls.__subclasses__() for s in subclasses(sub)}

    catalogued = {cls for cls, _, _ in CATALOGUE}
    assert subclasses(ApiError) - {ApiError} == catalogued
    for entry in DOC["components"]["x-error-catalogue"]:
        assert entry["schema"].rsplit("/", 1)[1] in SCHEMAS
        assert entry["meaning"] and entry["when"]


def test_documented_operations_are_the_routes(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings())
    routed = {
        route.path: {m.lower() for m in route.methods or ()}
        | ({"options"} if route.path in API_PATHS else set())
        for route in app.routes
        # The website's pages are HTML for people, not part of the API.
        if isinstance(route, Route) and not route.endpoint.__module__.startswith("ichnaea.web.site")
    }
    documented = {path: set(item) for path, item in DOC["paths"].items()}
    assert documented == routed


def test_openapi_json_serves_the_document(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == json.loads(json.dumps(DOC))
    head = client.head("/openapi.json")
    assert head.status_code == 200 and head.content == b""
    assert client.delete("/openapi.json").status_code == 405


# -- the keys each parser reads


class Recording(dict[str, Any]):
    """A JSON object that logs which members are looked up, as ``(where, name)``."""

    def __init__(self, data: dict[str, Any], log: set[tuple[Where, str]], where: Where) -> None:
        super().__init__(data)
        self.log, self.where = log, where

    def get(self, key: str, default: Any = None) -> Any:
        self.log.add((self.where, key))
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.log.add((self.where, key))
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.log.add((self.where, str(key)))
        return super().__contains__(key)

    def _every_member(self, *args: Any) -> Any:
        raise AssertionError(f"the parser reads every member of {self.where}, not named ones")

    __iter__ = keys = values = items = _every_member


def full(schema: Schema, log: set[tuple[Where, str]], where: Where, pick: int, omit: str) -> Any:
    """A body with every documented member (but ``omit``), each object a ``Recording``;
    choice fields take their ``pick``-th value."""
    schema = resolve(schema)
    if "enum" in schema:
        choices = [v for v in schema["enum"] if v not in (None, "")]
        return choices[pick % len(choices)]
    kinds = schema.get("type")
    if "items" in schema:
        return [full(schema["items"], log, (*where, "*"), pick, omit)]
    if "properties" in schema:
        data = {
            name: full(member, log, (*where, name), pick, omit)
            for name, member in schema["properties"].items()
            if name != omit
        }
        return Recording(data, log, where)
    return good(schema) if kinds else True


def reads(parse: Callable[[Any], Any], schema: Schema) -> set[tuple[Where, str]]:
    """What ``parse`` looks up in bodies with every member, one member left out at a time
    (some members are read only without another: ``psc`` without
    ``primaryScramblingCode``), each choice field taking each of its values."""
    names = {name for _, name, _ in members(schema)}
    log: set[tuple[Where, str]] = set()
    for omit in ["", *sorted(names)]:
        for pick in range(8):
            # Without its list (queries, items) an envelope is a parse error.
            with contextlib.suppress(ParseError):
                parse(full(schema, log, (), pick, omit))
    return log


LOCATE_PARSERS: dict[str, Callable[[Any], Any]] = {
    "/v1/geolocate": parse_locate_request,
    "/v1/country": parse_locate_request,
    "/v1/geolocate/batch": lambda body: parse_batch(body, max_queries=10, ip=None, geoip=None),
}
SUBMIT_PARSERS: dict[str, Callable[[Any], Any]] = {
    "/v2/geosubmit": lambda body: parse_v2(body, NOW),
    "/v1/geosubmit": lambda body: parse_v1(body, NOW),
    "/v1/submit": lambda body: parse_v0(body, NOW),
}


@pytest.mark.parametrize("path", [*LOCATE_PARSERS, *SUBMIT_PARSERS])
def test_parser_reads_exactly_the_documented_members(path: str) -> None:
    parse = {**LOCATE_PARSERS, **SUBMIT_PARSERS}[path]
    schema = request_schema(path)
    documented = {(where, name) for where, name, _ in members(schema)}
    read = reads(parse, schema)
    assert read - documented == set(), "read but not documented"
    assert documented - read == set(), "documented but never read"


def test_reads_finds_an_undocumented_member() -> None:
    def nosy(body: Any) -> None:
        body.get("undocumented")
        parse_locate_request(body)

    schema = request_schema("/v1/geolocate")
    assert ((), "undocumented") in reads(nosy, schema)


# -- the types each parser accepts

POOL: list[Any] = [
    0, 7, -50, 1.5, -50.7, 1e300, True, False, None, "", "12", " 01", "-5 ", "1_000", "x",
    "12.5", "gsm", "nr", "GSM", "umts", "01:23:45:67:89:ab", [], [1], [{}], {}, {"a": 1},
]  # fmt: skip


def nest(where: Where, obj: dict[str, Any]) -> dict[str, Any]:
    """A body holding the object ``obj`` at ``where`` (one entry per list)."""
    if not where:
        return obj
    head, rest = where[0], where[1:]
    if rest[:1] == ("*",):
        return {head: [nest(rest[1:], obj)]}
    return {head: nest(rest, obj)}


def schema_at(schema: Schema, where: Where) -> Schema:
    """The schema of the object at ``where``."""
    schema = resolve(schema)
    for part in where:
        schema = resolve(schema["items"] if part == "*" else schema["properties"][part])
    return schema


def locate_fields() -> list[tuple[Where, str, Schema]]:
    return list(members(request_schema("/v1/geolocate")))


@pytest.mark.parametrize(
    ("where", "name", "schema"),
    locate_fields(),
    ids=[".".join((*w, n)) for w, n, _ in locate_fields()],
)
def test_locate_parser_accepts_exactly_the_documented_values(
    where: Where, name: str, schema: Schema
) -> None:
    path = ".".join(("0" if part == "*" else part) for part in (*where, name))
    for value in POOL:
        documented = is_valid(schema, value)
        try:
            parse_locate_request(nest(where, {name: copy.deepcopy(value)}))
        except ParseError as exc:
            assert not documented, f"{path}={value!r} is documented but refused: {exc.details}"
            assert exc.details is not None
            (refused,) = exc.details["validation"]
            assert refused == path or refused.startswith(path + "."), (value, refused)
        else:
            assert documented, f"{path}={value!r} is accepted but not documented"


def submitted(
    parse: Callable[[Any], Any], where: Where, obj: dict[str, Any], network: dict[str, Any]
) -> Any:
    """The reports ``parse`` makes of one report holding ``obj`` at ``where`` and ``network``
    (a report is kept only with one)."""
    return parse({"items": [{**network, **nest(where, obj)}]})


@pytest.mark.parametrize("path", list(SUBMIT_PARSERS))
def test_submit_parser_reads_the_documented_types_and_drops_others(path: str) -> None:
    parse = SUBMIT_PARSERS[path]
    report = schema_at(request_schema(path), ("items", "*"))
    # A report is kept only with a network: one cell (a cell needs no member).
    cells = next(name for name in report["properties"] if name in ("cellTowers", "cell"))
    for where, name, schema in members(report):
        holder = schema_at(report, where)
        others = {n: m for n, m in holder["properties"].items() if n != name}
        required = {n: good(others[n]) for n in holder.get("required", []) if n != name}
        # Some members count only with a sibling's value (newRadioCellId: radio nr).
        siblings = [{}] + [
            {n: v} for n, m in others.items() for v in resolve(m).get("enum", []) if v is not None
        ]
        network: dict[str, Any] = {} if (where, name) == ((), cells) else {cells: [{}]}
        effect = False
        for sibling in siblings:
            without = submitted(parse, where, {**required, **sibling}, network)
            value = {**required, **sibling, name: good(schema)}
            effect = effect or submitted(parse, where, value, network) != without
            # Never a scalar, never a list of objects (nor an object, but for one).
            junks = [junk for junk in ([1], {"a": 1}) if not is_valid(schema, junk)]
            assert junks, (where, name)
            for junk in junks:
                value = {**required, **sibling, name: junk}
                assert submitted(parse, where, value, network) == without, (where, name, junk)
        assert effect, f"{where} {name}={good(schema)!r} is documented but changes nothing"
