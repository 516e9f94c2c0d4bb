"""The API reference page's content, read from the OpenAPI document (``/openapi.json``).

:func:`api_reference` turns :func:`ichnaea.api.openapi.openapi_document`
into what the template lists, so the page never says something the document
does not:

* one entry per path, grouped by the document's tags: its methods (``OPTIONS``
  only as a "CORS" mark), summary and description from the main operation
  (POST, else GET, else the first), parameters, the request body as a
  table of fields, the success answers with their fields and examples, and
  the error answers by status and reason, linked to the catalogue;
* a body schema is described once, at its first endpoint; later ones link there;
* fields are walked depth first through objects and arrays (``items[].``
  prefixes), following ``$ref``; a referenced schema with properties that is
  another endpoint's whole body (``GeolocateRequest`` in a batch) is named
  and linked instead of repeated, and one without properties
  (``LocateInteger``) is named and explained once, under "Value types";
* the error catalogue is ``components["x-error-catalogue"]``, each entry
  with the example body of its schema.

Descriptions are plain text with Markdown code spans: :func:`inline_markup`
escapes them and turns `` `x` `` into ``<code>x</code>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

MAIN_METHODS = ("post", "get", "head", "put", "delete", "patch")
MAX_FIELD_DEPTH = 6
CONSTRAINTS = (
    ("minimum", "≥ {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMinimum", "> {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"),
    ("minItems", "at least {} entries"),
    ("maxItems", "at most {} entries"),
    ("maxProperties", "at most {} members"),
    ("pattern", "matches {}"),
    ("format", "format {}"),
    ("default", "default {}"),
)
CODE_SPAN = re.compile(r"`([^`]+)`")


def inline_markup(text: str) -> Markup:
    """Escaped text with Markdown code spans as ``<code>``; blank lines end paragraphs."""
    paragraphs = [part.strip() for part in re.split(r"\n\s*\n", text) if part.strip()]
    html = []
    for paragraph in paragraphs:
        escaped = str(escape(" ".join(paragraph.split())))
        html.append(CODE_SPAN.sub(lambda m: f"<code>{m.group(1)}</code>", escaped))
    return Markup("</p><p>".join(html))


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str
    required: bool
    description: str
    constraints: str
    link: str | None = None  # anchor of the named schema the type refers to


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    location: str
    required: bool
    type: str
    description: str


@dataclass(frozen=True, slots=True)
class Body:
    description: str
    media_types: list[str]
    schema: str | None
    fields: list[Field]
    examples: list[str]
    # The first body of a named schema carries its anchor and its fields; a later
    # one (/v1/country's) names it and links there instead.
    anchor: str
    first: bool


@dataclass(frozen=True, slots=True)
class Answer:
    status: str
    description: str
    schema: str | None
    fields: list[Field]
    examples: list[str]
    # (reason, anchor of its catalogue entry) of an error answer.
    reasons: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_error(self) -> bool:
        return self.status[:1] in ("4", "5")


@dataclass(frozen=True, slots=True)
class Endpoint:
    anchor: str
    path: str
    methods: list[str]
    cors: bool
    summary: str
    description: str
    parameters: list[Parameter]
    body: Body | None
    answers: list[Answer]


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    description: str
    endpoints: list[Endpoint]


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    anchor: str
    reason: str
    domain: str
    status: int
    message: str
    meaning: str
    when: str
    example: str | None


@dataclass(frozen=True, slots=True)
class ValueType:
    anchor: str
    name: str
    description: str


@dataclass(frozen=True, slots=True)
class Reference:
    title: str
    version: str
    openapi: str
    description: str
    groups: list[Group]
    value_types: list[ValueType]
    errors: list[CatalogueEntry]


def _anchor(*parts: str) -> str:
    text = "-".join(parts)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def error_anchor(schema: str) -> str:
    """The catalogue entry of an error schema (a reason alone is not unique: two notFound)."""
    return _anchor("error", schema)


class _Reader:
    """Walks one document: resolves ``$ref`` and collects the value types it meets."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.schemas: dict[str, Any] = doc.get("components", {}).get("schemas", {})
        self.value_types: dict[str, str] = {}
        self.bodies: set[str] = set()  # named schemas that are a whole request body

    def lookup(self, ref: str) -> Any:
        node: Any = self.doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def resolve(self, node: Any) -> dict[str, Any]:
        """The node with its ``$ref`` followed; sibling keys (a description) win."""
        if not isinstance(node, dict):
            return {}
        resolved: dict[str, Any] = node
        for _ in range(32):  # a reference chain, never a cycle, in a document of ours
            if "$ref" not in resolved:
                break
            target = self.lookup(resolved["$ref"])
            resolved = {**target, **{k: v for k, v in resolved.items() if k != "$ref"}}
        return resolved

    @staticmethod
    def ref_name(node: Any) -> str | None:
        if isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref: str = node["$ref"]
            if ref.startswith("#/components/schemas/"):
                return ref.rsplit("/", 1)[1]
        return None

    def type_text(self, node: Any) -> tuple[str, str | None]:
        """A short type for a schema node, and the anchor of the named schema it is."""
        name = self.ref_name(node)
        if name is not None:
            target = self.schemas.get(name, {})
            if "properties" not in target and "items" not in target and "type" not in target:
                self.value_types[name] = str(target.get("description", ""))
                return name, _anchor("type", name)
            if name in self.bodies:
                return name, _anchor("body", name)
        node = self.resolve(node)
        if "const" in node:
            return json.dumps(node["const"]), None
        if "enum" in node:
            return "one of " + ", ".join(json.dumps(v) for v in node["enum"]), None
        for key in ("anyOf", "oneOf"):
            if key in node:
                texts = [self.type_text(option)[0] for option in node[key]]
                return " or ".join(dict.fromkeys(texts)), None
        kind = node.get("type")
        if kind == "array" or (kind is None and "items" in node):
            inner, link = self.type_text(node.get("items", {}))
            return f"array of {inner}", link
        if isinstance(kind, list):
            return " or ".join(str(k) for k in kind), None
        if isinstance(kind, str):
            return kind, None
        return ("object", None) if "properties" in node else ("any", None)

    @staticmethod
    def constraints(node: dict[str, Any]) -> str:
        found = [
            template.format(json.dumps(node[key]) if key in ("pattern", "default") else node[key])
            for key, template in CONSTRAINTS
            if key in node
        ]
        return "; ".join(found)

    def fields(self, schema: Any, prefix: str = "", depth: int = 0) -> list[Field]:
        node = self.resolve(schema)
        if "properties" not in node and "items" in node:
            return self.fields(node["items"], prefix + "[].", depth)
        rows: list[Field] = []
        required = set(node.get("required", []))
        for name, prop in node.get("properties", {}).items():
            resolved = self.resolve(prop)
            type_text, link = self.type_text(prop)
            description = prop.get("description") if isinstance(prop, dict) else None
            if description is None and link is None:
                description = resolved.get("description", "")
            rows.append(
                Field(
                    prefix + name,
                    type_text,
                    name in required,
                    str(description or ""),
                    self.constraints(resolved),
                    link,
                )
            )
            if link is None and depth < MAX_FIELD_DEPTH:
                inner = resolved.get("items", resolved) if "items" in resolved else resolved
                suffix = "[]." if "items" in resolved else "."
                if "properties" in self.resolve(inner):
                    rows.extend(self.fields(inner, prefix + name + suffix, depth + 1))
        return rows

    def examples(self, content: dict[str, Any], schema: Any) -> list[str]:
        found: list[Any] = []
        for example in (content.get("examples") or {}).values():
            value = self.resolve(example).get("value")
            if value is not None:
                found.append(value)
        if "example" in content:
            found.append(content["example"])
        if not found:
            found.extend(self.resolve(schema).get("examples", []))
        return [_json(value) for value in found]


def _main_operation(operations: dict[str, Any]) -> dict[str, Any]:
    for method in MAIN_METHODS:
        if method in operations:
            operation: dict[str, Any] = operations[method]
            return operation
    return dict(next(iter(operations.values())))


def _body(reader: _Reader, operation: dict[str, Any], anchored: set[str]) -> Body | None:
    body = reader.resolve(operation.get("requestBody"))
    content: dict[str, Any] = body.get("content", {})
    if not content:
        return None
    first = next(iter(content.values()))
    schema = first.get("schema", {})
    name = reader.ref_name(schema)
    repeated = name is not None and name in anchored
    if name is not None:
        anchored.add(name)
    return Body(
        str(body.get("description", "")),
        list(content),
        name,
        [] if repeated else reader.fields(schema),
        [] if repeated else reader.examples(first, schema),
        _anchor("body", name or ""),
        not repeated,
    )


def _answers(reader: _Reader, operation: dict[str, Any]) -> list[Answer]:
    answers = []
    for status, raw in operation.get("responses", {}).items():
        response = reader.resolve(raw)
        content: dict[str, Any] = response.get("content", {})
        first: dict[str, Any] = next(iter(content.values()), {})
        schema = first.get("schema", {})
        is_error = str(status)[:1] in ("4", "5")
        reasons = []
        if is_error:
            catalogue = reader.doc.get("components", {}).get("x-error-catalogue", [])
            by_schema = {str(e.get("schema", "")).rsplit("/", 1)[-1]: e for e in catalogue}
            for option in reader.resolve(schema).get("anyOf") or [schema]:
                name = reader.ref_name(option)
                if name is not None and name in by_schema:
                    reasons.append((str(by_schema[name]["reason"]), error_anchor(name)))
        answers.append(
            Answer(
                str(status),
                str(response.get("description", "")),
                reader.ref_name(schema),
                [] if is_error else reader.fields(schema),
                [] if is_error else reader.examples(first, schema),
                list(dict.fromkeys(reasons)),
            )
        )
    return answers


def _parameters(
    reader: _Reader, operations: dict[str, Any], main: dict[str, Any]
) -> list[Parameter]:
    found = []
    for raw in [*operations.get("parameters", []), *main.get("parameters", [])]:
        parameter = reader.resolve(raw)
        found.append(
            Parameter(
                str(parameter.get("name", "")),
                str(parameter.get("in", "")),
                bool(parameter.get("required", False)),
                reader.type_text(parameter.get("schema", {}))[0],
                str(parameter.get("description", "")),
            )
        )
    return found


def api_reference(doc: dict[str, Any]) -> Reference:
    reader = _Reader(doc)
    paths: dict[str, dict[str, Any]] = doc.get("paths", {})
    for operations in paths.values():
        for operation in operations.values():
            if isinstance(operation, dict):
                content = reader.resolve(operation.get("requestBody")).get("content", {})
                for media in content.values():
                    name = reader.ref_name(media.get("schema"))
                    if name is not None:
                        reader.bodies.add(name)
    groups: dict[str, list[Endpoint]] = {}
    anchored: set[str] = set()
    for path, item in paths.items():
        operations = {m: op for m, op in item.items() if m in (*MAIN_METHODS, "options")}
        if not operations:
            continue
        main = _main_operation(
            {m: op for m, op in operations.items() if m != "options"} or operations
        )
        endpoint = Endpoint(
            _anchor("path", path),
            path,
            [m.upper() for m in operations if m != "options"],
            "options" in operations,
            str(main.get("summary", "")),
            str(main.get("description", "")),
            _parameters(reader, item, main),
            _body(reader, main, anchored),
            _answers(reader, main),
        )
        tag = (main.get("tags") or ["other"])[0]
        groups.setdefault(str(tag), []).append(endpoint)
    descriptions = {str(t.get("name")): str(t.get("description", "")) for t in doc.get("tags", [])}
    ordered = [name for name in descriptions if name in groups]
    ordered += [name for name in groups if name not in descriptions]
    examples: dict[str, Any] = doc.get("components", {}).get("examples", {})
    errors = []
    for entry in doc.get("components", {}).get("x-error-catalogue", []):
        name = str(entry.get("schema", "")).rsplit("/", 1)[-1]
        example = examples.get(name, {}).get("value")
        errors.append(
            CatalogueEntry(
                error_anchor(name),
                str(entry["reason"]),
                str(entry.get("domain", "")),
                int(entry["status"]),
                str(entry.get("message", "")),
                str(entry.get("meaning", "")),
                str(entry.get("when", "")),
                _json(example) if example is not None else None,
            )
        )
    info = doc.get("info", {})
    return Reference(
        str(info.get("title", "")),
        str(info.get("version", "")),
        str(doc.get("openapi", "")),
        str(info.get("description", "")),
        [Group(name, descriptions.get(name, ""), groups[name]) for name in ordered],
        [
            ValueType(_anchor("type", name), name, description)
            for name, description in sorted(reader.value_types.items())
        ],
        errors,
    )
