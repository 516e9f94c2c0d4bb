"""The service's own answers (``AnswerResponse``) are what Starlette's ``JSONResponse`` sends."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.responses import JSONResponse

from ichnaea.api.responses import AnswerResponse


@pytest.mark.parametrize(
    ("content", "status"),
    [
        ({"location": {"lat": 51.5, "lng": -0.1}, "accuracy": 12.5}, 200),
        ({"country_code": "DE", "country_name": "Deutschland"}, 200),
        ({"country_code": "CI", "country_name": "Côte d'Ivoire"}, 200),
        ({}, 200),
    ],
)
def test_answer_sends_the_json_response_headers_and_an_equivalent_body(
    content: dict[str, Any], status: int
) -> None:
    ours, theirs = AnswerResponse(content, status), JSONResponse(content, status)
    assert ours.status_code == theirs.status_code
    assert ours.raw_headers == theirs.raw_headers
    assert json.loads(ours.body) == json.loads(theirs.body)
    assert ours.background is None
