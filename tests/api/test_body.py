import gzip
import json
import threading

import anyio
import pytest

from ichnaea.api.body import (
    LARGE_BODY_BYTES,
    MAX_LARGE_BODIES,
    decode_json_body,
    large_body_limiter,
    parse_body,
)
from ichnaea.errors import ParseError, PayloadTooLargeError

LIMIT = 10_000


def decode(raw: bytes, encoding: str | None = None, ctype: str | None = None) -> object:
    data, _ = decode_json_body(
        raw, content_encoding=encoding, content_type=ctype, max_decompressed_bytes=LIMIT
    )
    return data


def test_plain_and_gzip_json_decode_the_same() -> None:
    body = b'{"considerIp": false}'
    assert decode(body) == decode(gzip.compress(body), "gzip") == {"considerIp": False}


def test_empty_body_is_an_empty_mapping_and_flagged() -> None:
    assert decode_json_body(
        b"", content_encoding=None, content_type=None, max_decompressed_bytes=LIMIT
    ) == ({}, True)


def test_truncated_gzip_reports_the_original_decode_detail() -> None:
    with pytest.raises(ParseError) as info:
        decode(gzip.compress(b'{"a": 1}')[:-8], "gzip")
    assert info.value.details == {
        "decode": "GZIPDecodeError(\"EOFError('Compressed file ended before the "
        "end-of-stream marker was reached')\")"
    }


def test_gzip_bomb_is_refused_not_inflated() -> None:
    with pytest.raises(PayloadTooLargeError):
        decode(gzip.compress(b" " * (LIMIT * 100)), "gzip")


def test_charset_from_content_type_is_used() -> None:
    assert decode('{"a": "é"}'.encode("latin-1"), None, "application/json; charset=latin-1") == {
        "a": "é"
    }


def test_bad_utf8_is_a_parse_error_with_the_codec_message() -> None:
    with pytest.raises(ParseError) as info:
        decode(b'{"a": "caf\xe9 au lait"}')
    assert info.value.details is not None
    assert "can't decode byte 0xe9 in position 10" in info.value.details["decode"]


def test_invalid_json_reports_the_exception_repr() -> None:
    with pytest.raises(ParseError) as info:
        decode(b"not json")
    assert info.value.details == {
        "decode": "JSONDecodeError('Expecting value: line 1 column 1 (char 0)')"
    }


def test_parse_error_body_puts_details_beside_error() -> None:
    body = ParseError({"decode": "x"}).body()
    assert body == {
        "error": {
            "errors": [{"domain": "global", "reason": "parseError", "message": "Parse Error"}],
            "code": 400,
            "message": "Parse Error",
        },
        "details": {"decode": "x"},
    }


def test_integer_past_the_conversion_limit_is_a_parse_error_not_a_crash() -> None:
    """Found by benchmarks/fuzz_api.py: json.loads raises a plain ValueError for an
    integer of more than 4,300 digits (Python's int/str conversion limit), which
    escaped as a 500."""
    with pytest.raises(ParseError) as info:
        decode(b'{"cellTowers": [{"cellId": ' + b"1" + b"0" * 5000 + b"}]}")
    assert info.value.details is not None
    assert "4300 digits" in info.value.details["decode"]


@pytest.mark.parametrize("charset", ["punycode", "undefined"])
def test_charset_whose_codec_fails_without_unicode_decode_error_is_a_parse_error(
    charset: str,
) -> None:
    """Found by benchmarks/fuzz_api.py: these codecs raise a plain UnicodeError (the
    base class of UnicodeDecodeError), which escaped as a 500."""
    with pytest.raises(ParseError) as info:
        decode(b'{"considerIp": false}', None, f"application/json; charset={charset}")
    assert info.value.details is not None
    assert charset in info.value.details["decode"]


def test_large_bodies_are_inflated_at_most_max_large_bodies_at_a_time() -> None:
    """Issue 8 item 8: 2 MB bodies waiting to be parsed stay bytes, not Python objects."""
    raw = json.dumps({"pad": "x" * LARGE_BODY_BYTES}).encode()
    release = threading.Event()
    parsing: list[int] = []

    def parse(data: object, empty: bool) -> int:
        parsing.append(1)
        release.wait(20)
        return len(parsing)

    async def one(limiter: anyio.CapacityLimiter) -> None:
        await parse_body(
            raw,
            parse,
            content_encoding=None,
            content_type=None,
            max_decompressed_bytes=LIMIT,
            limiter=limiter,
        )

    async def main() -> tuple[int, int]:
        limiter = large_body_limiter()
        async with anyio.create_task_group() as group:
            for _ in range(MAX_LARGE_BODIES + 3):
                group.start_soon(one, limiter)
            with anyio.fail_after(20):
                while limiter.statistics().tasks_waiting < 3:
                    await anyio.sleep(0.01)
            seen = (len(parsing), limiter.borrowed_tokens)
            release.set()
        return seen

    assert anyio.run(main) == (MAX_LARGE_BODIES, MAX_LARGE_BODIES)
    assert len(parsing) == MAX_LARGE_BODIES + 3
