"""Request body decoding shared by the locate and submit APIs.

Order and error details follow the original service: gunzip when
``Content-Encoding`` is exactly ``gzip``, decode with the charset of
``Content-Type`` (UTF-8 by default), then parse JSON; an empty text is ``{}``.
Each failure is a ``ParseError`` whose ``details["decode"]`` says what went
wrong. Unlike the original, the inflated size is bounded: a body that
inflates past the limit is a 413, not an out-of-memory kill.

:func:`parse_body` also applies the API's own parsing to the decoded data.
Decoding and parsing a 2 MB body takes a few hundred milliseconds of CPU,
so a large body is handled in a worker thread: the event loop keeps
answering other requests (``/__lbheartbeat__`` among them) in between.
At most ``MAX_LARGE_BODIES`` per process are inflated at a time, so 100
concurrent 2 MB bodies wait as 2 MB of bytes each instead of all becoming
Python objects ten times their size at once (``MAX_BODY_BYTES`` bounds the
waiting bytes).
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import zlib
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import orjson

from ichnaea.errors import ParseError, PayloadTooLargeError

T = TypeVar("T")


# Bodies past this size (and every gzip body, which may inflate to
# MAX_DECOMPRESSED_BYTES) are decoded and parsed in a worker thread, so the
# event loop keeps serving other requests; smaller ones inline, which is
# faster than a thread hop. A 64 KiB JSON body parses in about 2 ms.
LARGE_BODY_BYTES = 64 * 1024
# Large bodies decoded and parsed at the same time, per process. Parsing is
# CPU work under the GIL: more threads would not finish sooner, only hold
# more inflated bodies at once and take more turns from the event loop.
MAX_LARGE_BODIES = 2
_UTF8 = frozenset({"utf-8", "utf8"})
# Opening brackets (so nesting depth, at most) of a body orjson may parse.
_FAST_NESTING = 256


def large_body_limiter() -> anyio.CapacityLimiter:
    """The per-process limiter :func:`parse_body` takes for large bodies."""
    return anyio.CapacityLimiter(MAX_LARGE_BODIES)


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


@functools.lru_cache(maxsize=256)  # clients send few distinct Content-Types
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
    charset = _charset(content_type)
    if raw and charset.lower() in _UTF8 and raw.count(b"[") + raw.count(b"{") <= _FAST_NESTING:
        # orjson parses UTF-8 bytes several times faster than decode + json.
        # It refuses what the standard library accepts (NaN, Infinity, 1e400,
        # lone surrogate escapes), so on any failure the body goes the
        # standard way: the same data, the same error details. Bodies with
        # many brackets go that way at once: orjson accepts nesting up to
        # 1024 levels, deeper than the schemas can describe in an error
        # (repr recursion) and than the standard parser takes.
        try:
            return orjson.loads(raw), False
        except orjson.JSONDecodeError:
            pass
    try:
        text = raw.decode(charset)
    except LookupError as exc:
        raise ParseError({"decode": f"unknown charset: {exc}"}) from exc
    except UnicodeError as exc:
        # UnicodeDecodeError, and the plain UnicodeError of codecs such as
        # punycode or undefined.
        raise ParseError({"decode": str(exc)}) from exc
    if not text:
        return {}, True
    try:
        return json.loads(text), False
    except (ValueError, RecursionError) as exc:
        # ValueError: JSONDecodeError, and integers past Python's 4300-digit
        # conversion limit (sys.set_int_max_str_digits), which are no JSON error.
        raise ParseError({"decode": repr(exc)}) from exc


async def parse_body(
    raw: bytes,
    parse: Callable[[Any, bool], T],
    *,
    content_encoding: str | None,
    content_type: str | None,
    max_decompressed_bytes: int,
    limiter: anyio.CapacityLimiter,
) -> T:
    """Decode ``raw`` and return ``parse(data, was_empty)``.

    Inline for a small plain body; for a large one, or any gzip body (which
    may inflate to ``max_decompressed_bytes``), in a worker thread holding
    one of ``limiter``'s tokens. ``parse`` runs in that thread too, so it
    must not touch the event loop.
    """

    def work() -> T:
        data, empty = decode_json_body(
            raw,
            content_encoding=content_encoding,
            content_type=content_type,
            max_decompressed_bytes=max_decompressed_bytes,
        )
        return parse(data, empty)

    if len(raw) <= LARGE_BODY_BYTES and content_encoding != "gzip":
        return work()
    return await anyio.to_thread.run_sync(work, limiter=limiter)
