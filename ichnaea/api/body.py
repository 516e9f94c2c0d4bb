"""Request body decoding shared by the locate and submit APIs.

Order and error details follow the original service: gunzip when
``Content-Encoding`` is exactly ``gzip``, decode with the charset of
``Content-Type`` (UTF-8 by default), then parse JSON; an empty text is ``{}``.
Each failure is a ``ParseError`` whose ``details["decode"]`` says what went
wrong. Unlike the original, the inflated size is bounded: a body that
inflates past the limit is a 413, not an out-of-memory kill.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from typing import Any

from ichnaea.errors import ParseError, PayloadTooLargeError


class GZIPDecodeError(Exception):
    """The body claimed gzip encoding but could not be inflated."""


def _gunzip(raw: bytes, max_bytes: int) -> bytes:
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            data = stream.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ParseError({"decode": repr(GZIPDecodeError(repr(exc)))}) from exc
    if len(data) > max_bytes:
        raise PayloadTooLargeError()
    return data


def _charset(content_type: str | None) -> str:
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def decode_json_body(
    raw: bytes,
    *,
    content_encoding: str | None,
    content_type: str | None,
    max_decompressed_bytes: int,
) -> tuple[Any, bool]:
    """Parse a request body; return ``(data, was_empty)``.

    ``was_empty`` is true when the decoded text was empty, in which case the
    data is ``{}`` (the APIs treat empty bodies specially).
    """
    if content_encoding == "gzip":
        raw = _gunzip(raw, max_decompressed_bytes)
    try:
        text = raw.decode(_charset(content_type))
    except LookupError as exc:
        raise ParseError({"decode": f"unknown charset: {exc}"}) from exc
    except UnicodeDecodeError as exc:
        raise ParseError({"decode": str(exc)}) from exc
    if not text:
        return {}, True
    try:
        return json.loads(text), False
    except (ValueError, RecursionError) as exc:
        # ValueError: JSONDecodeError, and integers past Python's 4300-digit
        # conversion limit (sys.set_int_max_str_digits), which are no JSON error.
        raise ParseError({"decode": repr(exc)}) from exc
