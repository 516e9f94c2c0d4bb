"""Schemathesis against ``/openapi.json`` and the running server, for every operation.

The app runs on a real socket with the real backends; schemathesis loads
the document the server serves and, for each operation, generates
requests that follow it (positive) and requests that break it (negative),
and checks every answer: no 500, a documented status code, content type
and headers, a body that matches the documented schema. Negative locate
requests must also be refused (a locate field of the wrong type is a
parseError); submissions and batch queries are lenient by design (a bad
field is dropped, a bad query answered in its place), so for them only
the answer's conformance is checked.

A well-formed key is replaced by a known one, so that requests get past
the key check to the body; missing and malformed keys stay as generated.
Requests come as from a London address, so the IP fallback answers some.

``SCHEMATHESIS_MAX_EXAMPLES`` cases per operation and mode (default 25,
for CI), ``SCHEMATHESIS_OPERATIONS`` to run only the operations whose
label ("POST /v1/geolocate") contains it; a longer run:

    SCHEMATHESIS_MAX_EXAMPLES=300 .venv/bin/python -m pytest -n0 -q \\
        -o log_cli=true --log-cli-level=INFO tests/api/test_schemathesis.py

(the log lines give the cases run and the statuses seen per operation and mode).
"""

from __future__ import annotations

import collections
import logging
import os
import re
import traceback
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ichnaea.api.keys import KEY_PATTERN
from ichnaea.api.openapi import openapi_document
from ichnaea.config import Settings
from ichnaea.web.app import create_app
from tests._server import uvicorn_server
from tests.fixtures_app import Seeder

log = logging.getLogger(__name__)

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
# Only the operations whose label ("POST /v1/geolocate") contains this text.
ONLY = os.environ.get("SCHEMATHESIS_OPERATIONS", "")
# A request that breaks the document is refused with a parseError, or a 413 when it is
# too large (not a 404: that would mean the parser took it).
REJECTED = [400, 413]
KEY = "schemathesis"
LONDON = {"X-Forwarded-For": "81.2.69.192"}  # in the GeoIP test data
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Operations whose every field is type-checked: a request breaking the document is refused.
STRICT_PATHS = ("/v1/geolocate", "/v1/country")


def use_known_key(case: schemathesis.Case[Any]) -> None:
    key = (case.query or {}).get("key")
    if isinstance(key, str) and re.match(KEY_PATTERN, key):
        case.query["key"] = KEY


def run_operation(
    operation: Any, mode: GenerationMode, checks: list[Callable[..., Any]]
) -> collections.Counter[int]:
    """Run ``MAX_EXAMPLES`` cases of ``operation``; the status codes seen."""
    statuses: collections.Counter[int] = collections.Counter()

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case[Any]) -> None:
        use_known_key(case)
        response = case.call_and_validate(headers=LONDON, checks=checks)
        statuses[response.status_code] += 1

    check()
    return statuses


# A run takes about a second per unit of MAX_EXAMPLES (every operation and mode together).
@pytest.mark.timeout(max(300, 3 * MAX_EXAMPLES))
def test_server_conforms_to_its_openapi_document(app_settings: Settings, seed: Seeder) -> None:
    seed.api_key(KEY)
    with uvicorn_server(create_app(app_settings)) as (host, port):
        config = {"checks": {"negative_data_rejection": {"expected-statuses": REJECTED}}}
        schema = schemathesis.openapi.from_url(
            f"http://{host}:{port}/openapi.json", config=schemathesis.Config.from_dict(config)
        )
        failures: dict[str, str] = {}
        seen: dict[str, collections.Counter[int]] = {}
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result.err()
            operation = result.ok()
            if ONLY not in operation.label:
                continue
            # Without parameters or a body, nothing can break the document.
            modes = [GenerationMode.POSITIVE]
            if operation.body or operation.query:
                modes.append(GenerationMode.NEGATIVE)
            for mode in modes:
                checks = list(CONFORMANCE)
                if mode is GenerationMode.NEGATIVE and operation.path in STRICT_PATHS:
                    checks.append(negative_data_rejection)
                label = f"{operation.label} {mode.value}"
                try:
                    seen[label] = run_operation(operation, mode, checks)
                except Exception as exc:  # every operation runs; the failures are listed
                    failures[label] = "".join(traceback.format_exception(exc))[-4000:]
    for label, statuses in sorted(seen.items()):
        log.info(
            "%s: %d cases, statuses %s", label, statuses.total(), dict(sorted(statuses.items()))
        )
    if not ONLY:
        paths = openapi_document()["paths"]
        documented = {f"{method.upper()} {path}" for path, item in paths.items() for method in item}
        ran = {label.rsplit(" ", 1)[0] for label in (*seen, *failures)}
        # Schemathesis leaves out the operation that serves the schema it tests with.
        assert ran == documented - {"GET /openapi.json"}
    assert not failures, "\n\n".join(f"{label}\n{text}" for label, text in failures.items())
