"""Queued items (``encode_item`` / ``decode_item``): gzip JSON that reads back as written."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from ichnaea.broker.queue import decode_item, encode_item


@pytest.mark.parametrize(
    "item",
    [
        {"api_key": "k", "source": "gnss", "report": {"position": {"latitude": 51.5}}},
        {"report": {"wifiAccessPoints": [{"ssid": "Café ☕", "signalStrength": -61}]}},
        # orjson refuses these two; the standard library's way writes them.
        {"report": {"wifiAccessPoints": [{"ssid": "lone \ud800 surrogate"}]}},
        {"report": {"cellTowers": [{"cellId": 2**70}]}},
        {"nested": [1.5, 1e-7, 123456789.123456789, None, True, False, ""]},
    ],
)
def test_items_read_back_as_written(item: dict[str, Any]) -> None:
    raw = encode_item(item)
    assert raw[:2] == b"\x1f\x8b"  # gzip, as every consumer expects
    assert decode_item(raw) == item
    # The JSON inside is what the standard library reads.
    assert json.loads(gzip.decompress(raw)) == item


def test_other_gzip_forms_read_as_gzip_reads_them() -> None:
    one = gzip.compress(b'{"a": 1}')
    # Several members, and trailing zero padding, are read whole.
    assert decode_item(one + gzip.compress(b" ")) == {"a": 1}
    assert decode_item(one + b"\0\0\0") == {"a": 1}
    # A damaged or truncated item raises what gzip.decompress raises.
    for broken in (one[:-5], one[:12] + b"\xff" * 8 + one[20:]):
        with pytest.raises(Exception) as expected:  # whatever gzip raises
            gzip.decompress(broken)
        with pytest.raises(type(expected.value)):
            decode_item(broken)


@pytest.mark.parametrize("networks", [1, 15, 200])
def test_items_compress_as_well_as_gzip_at_the_originals_level(networks: int) -> None:
    """The queue's gzip (ISA-L at its level 2, a decision of session 17: a third
    of zlib's time) is no larger than ``gzip.compress`` at level 6, the
    original's, give or take 1 %, for reports of one to 200 networks."""
    report = {
        "position": {"latitude": 51.5, "longitude": -0.1, "accuracy": 10.0},
        "wifiAccessPoints": [
            {"macAddress": f"{(i * 7919) % 2**48:012x}", "signalStrength": -40 - i % 50}
            for i in range(networks)
        ],
    }
    item = {"api_key": "k", "source": "gnss", "report": report}
    raw = encode_item(item)
    plain = json.dumps(item, separators=(",", ":")).encode()
    assert gzip.decompress(raw) == plain
    assert len(raw) <= len(gzip.compress(plain, compresslevel=6)) * 1.01 + 2
