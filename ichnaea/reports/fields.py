"""Declarative tables of the JSON fields the request parsers read.

The request parsers (``ichnaea.api.locate.schemas``, ``ichnaea.reports.formats``)
are hand-written coercing functions: fast, and exact about the original
service's quirks. What they read is declared once, as tables of
:class:`Field`: each parser module lists its fields and takes the name
tuples its loops run over from them (:func:`names`, evaluated at import),
and the API document (``ichnaea.api.openapi``) renders the same tables as
JSON Schema. ``tests/api/test_openapi.py`` holds the two together: a field
a parser reads that no table lists, one a table lists that the parser
ignores, or a type the parser accepts or refuses against its table fails
it.

A kind says what a client sends; how a value of another type is treated
belongs to the parser (the locate parser refuses it, the submit parser
drops it) and the document says so per API.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace


class Kind(enum.Enum):
    integer = "integer"
    number = "number"
    string = "string"
    boolean = "boolean"
    # A string from ``Field.choices``.
    choice = "choice"
    # A 48-bit MAC address as text (colons, dashes, dots or none between the digits).
    mac = "mac"
    # Milliseconds since the Unix epoch, as an integer.
    timestamp = "timestamp"
    # ISO 8601 text, or milliseconds since the Unix epoch.
    datetime = "datetime"
    # A JSON array of objects; ``Field.fields`` describe one entry.
    array = "array"
    # A JSON object; ``Field.fields`` describe its members.
    object = "object"


@dataclass(frozen=True, slots=True)
class Field:
    """One member of a JSON object as a parser reads it."""

    name: str
    kind: Kind
    description: str
    # The members of an object, or of each entry of an array.
    fields: tuple[Field, ...] = ()
    # The texts a ``choice`` field understands.
    choices: tuple[str, ...] = ()
    # Another field this one stands in for when that one is absent; the
    # parser reads it by name, so :func:`names` leaves it out.
    alias_of: str | None = None
    # An entry without it is dropped (submissions), never an error.
    required: bool = False


def names(fields: tuple[Field, ...], kind: Kind) -> tuple[str, ...]:
    """The names of the plain ``kind`` fields, in table order (aliases left out)."""
    return tuple(f.name for f in fields if f.kind is kind and f.alias_of is None)


def by_name(fields: tuple[Field, ...], name: str) -> Field:
    """The field called ``name``; ``KeyError`` if the table has none."""
    for candidate in fields:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def renamed(renames: Mapping[str, str], fields: tuple[Field, ...]) -> tuple[Field, ...]:
    """The fields of an older schema that a parser renames (old name → new name) into
    ``fields``: each takes the kind and description of the field it becomes."""
    return tuple(
        replace(by_name(fields, new), name=old, alias_of=None) for old, new in renames.items()
    )
