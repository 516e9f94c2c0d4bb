"""The API reference's reading of an OpenAPI document (ichnaea.web.site.apidoc)."""

from __future__ import annotations

from ichnaea.web.site import apidoc


def test_api_reference_walks_refs_arrays_and_value_types() -> None:
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "T", "version": "1", "description": "Use `x`.\n\nSecond <p>."},
        "tags": [{"name": "locate", "description": "Find."}],
        "paths": {
            "/a": {
                "post": {
                    "tags": ["locate"],
                    "summary": "A",
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Req"}}
                        }
                    },
                    "responses": {
                        "200": {"description": "ok"},
                        "404": {
                            "description": "no",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Gone"}
                                }
                            },
                        },
                    },
                },
                "options": {"summary": "CORS preflight", "responses": {"200": {"description": ""}}},
            },
            "/b": {
                "get": {
                    "tags": ["locate"],
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "many": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/Req"},
                                        }
                                    },
                                }
                            }
                        }
                    },
                    "responses": {},
                }
            },
        },
        "components": {
            "schemas": {
                "Num": {"description": "A lenient number."},
                "Gone": {"type": "object"},
                "Req": {
                    "type": "object",
                    "required": ["cells"],
                    "properties": {
                        "cells": {
                            "type": "array",
                            "maxItems": 5,
                            "items": {
                                "type": "object",
                                "properties": {
                                    "id": {"$ref": "#/components/schemas/Num", "description": "Id."}
                                },
                            },
                        },
                        "kind": {"enum": ["a", None]},
                    },
                },
            },
            "examples": {"Gone": {"value": {"error": 404}}},
            "x-error-catalogue": [
                {"reason": "gone", "status": 404, "schema": "#/components/schemas/Gone"}
            ],
        },
    }
    ref = apidoc.api_reference(doc)
    (group,) = ref.groups
    first, second = group.endpoints
    assert first.methods == ["POST"] and first.cors and not second.cors
    assert first.body is not None and first.body.first
    assert [(f.name, f.type, f.required) for f in first.body.fields] == [
        ("cells", "array of object", True),
        ("cells[].id", "Num", False),
        ("kind", 'one of "a", null', False),
    ]
    assert first.body.fields[0].constraints == "at most 5 entries"
    assert first.body.fields[1].link == "type-num" and first.body.fields[1].description == "Id."
    assert [a.reasons for a in first.answers] == [[], [("gone", "error-gone")]]
    # A whole body elsewhere is named and linked, not repeated.
    assert second.body is not None
    assert [(f.name, f.type, f.link) for f in second.body.fields] == [
        ("many", "array of Req", "body-req")
    ]
    assert [t.name for t in ref.value_types] == ["Num"]
    assert ref.errors[0].example == '{\n  "error": 404\n}'
    assert str(apidoc.inline_markup(doc["info"]["description"])) == (
        "Use <code>x</code>.</p><p>Second &lt;p&gt;."
    )
