"""Round trips and spec examples of the binary key codecs."""

from __future__ import annotations

import base64

import pytest

from ichnaea import codecs
from ichnaea.enums import Radio


@pytest.mark.parametrize("mac", ["a82067491500", "000000000001", "ffffffffffff", "0123456789ab"])
def test_mac_round_trips_through_six_bytes(mac: str) -> None:
    encoded = codecs.encode_mac(mac)
    assert len(encoded) == 6
    assert codecs.decode_mac(encoded) == mac


def test_encode_mac_accepts_upper_case_and_decodes_lower_case() -> None:
    assert codecs.decode_mac(codecs.encode_mac("A8206749150F")) == "a8206749150f"


@pytest.mark.parametrize(
    "mac", ["", "a8206749150", "a820674915001", "a8:20:67:49:15", "g82067491500", "a8 206749150"]
)
def test_encode_mac_rejects_anything_but_twelve_hex_characters(mac: str) -> None:
    with pytest.raises(ValueError, match="12 hex"):
        codecs.encode_mac(mac)


@pytest.mark.parametrize("value", [b"", b"\x00" * 5, b"\x00" * 7])
def test_decode_mac_rejects_wrong_length(value: bytes) -> None:
    with pytest.raises(ValueError, match="6 bytes"):
        codecs.decode_mac(value)


@pytest.mark.parametrize(
    ("mac", "shard"),
    [("a82067491500", "6"), ("A820674F1500", "6"), ("0000a0000000", "a"), ("ffffffffffff", "f")],
)
def test_mac_shard_id_is_the_fifth_lower_case_hex_character(mac: str, shard: str) -> None:
    assert codecs.mac_shard_id(mac) == shard


def test_mac_shard_id_rejects_invalid_mac() -> None:
    with pytest.raises(ValueError):
        codecs.mac_shard_id("a820")


@pytest.mark.parametrize(
    "cell",
    [
        (Radio.gsm, 310, 410, 1, 1),
        (Radio.wcdma, 202, 0, 65535, 268_435_455),
        (Radio.lte, 995, 999, 65533, 4_294_967_295),
        (Radio.gsm, 0, 0, 0, 0),
    ],
)
def test_cellid_round_trips_through_eleven_bytes(cell: tuple[Radio, int, int, int, int]) -> None:
    encoded = codecs.encode_cellid(*cell)
    assert len(encoded) == codecs.CELLID_BYTES == 11
    decoded = codecs.decode_cellid(encoded)
    assert decoded == cell
    assert decoded.radio is cell[0]


@pytest.mark.parametrize(
    "cell",
    [
        (Radio.nr, 310, 410, 16_777_215, 68_719_476_735),
        (Radio.nr, 262, 1, 1, 1),
        (Radio.nr, 262, 1, 0, 0),
    ],
)
def test_nr_cellid_round_trips_through_seventeen_bytes(
    cell: tuple[Radio, int, int, int, int],
) -> None:
    encoded = codecs.encode_cellid(*cell)
    assert len(encoded) == codecs.NR_CELLID_BYTES == 17
    assert codecs.decode_cellid(encoded) == cell


def test_cellid_layout_is_big_endian_radio_mcc_mnc_lac_cid() -> None:
    assert codecs.encode_cellid(Radio.lte, 1, 2, 3, 4).hex() == "0300010002000300000004"
    assert codecs.encode_cellid(Radio.nr, 1, 2, 3, 4).hex() == (
        "0400010002000000030000000000000004"
    )


@pytest.mark.parametrize(
    "cell",
    [
        (Radio.gsm, 310, 410, 65536, 1),  # lac beyond 16 bits
        (Radio.lte, 310, 410, 1, 2**32),  # cid beyond 32 bits
        (Radio.gsm, -1, 410, 1, 1),  # negative mcc
        (Radio.nr, 310, 410, 2**32, 1),  # TAC beyond 32 bits
        (7, 310, 410, 1, 1),  # unknown radio
        ("lte", 310, 410, 1, 1),  # a radio name, not its code
        ([3], 310, 410, 1, 1),  # unhashable: still a ValueError
        (None, 310, 410, 1, 1),
    ],
)
def test_encode_cellid_rejects_values_that_do_not_fit(cell: tuple[int, int, int, int, int]) -> None:
    with pytest.raises(ValueError):
        codecs.encode_cellid(*cell)


@pytest.mark.parametrize("radio", [7, "lte", [3], None])
def test_encode_areaid_rejects_unknown_radios(radio: object) -> None:
    with pytest.raises(ValueError, match="unknown radio"):
        codecs.encode_areaid(radio, 310, 410, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize("radio", list(Radio))
def test_keys_take_the_radio_as_its_code_or_member(radio: Radio) -> None:
    # The layouts are found by the code; an IntEnum member and its int are one key.
    assert codecs.encode_cellid(radio, 1, 2, 3, 4) == codecs.encode_cellid(int(radio), 1, 2, 3, 4)
    assert codecs.decode_cellid(codecs.encode_cellid(int(radio), 1, 2, 3, 4)).radio is radio
    assert codecs.encode_areaid(radio, 1, 2, 3) == codecs.encode_areaid(int(radio), 1, 2, 3)


@pytest.mark.parametrize(
    "value",
    [
        b"\x00" * 10,
        b"\x00" * 12,
        bytes.fromhex("0400010002000300000004"),  # NR radio in 11 bytes
        bytes.fromhex("0300010002000000030000000000000004"),  # LTE in 17 bytes
        bytes.fromhex("0900010002000300000004"),  # unknown radio
    ],
)
def test_decode_cellid_rejects_malformed_keys(value: bytes) -> None:
    with pytest.raises(ValueError):
        codecs.decode_cellid(value)


@pytest.mark.parametrize(
    "area", [(Radio.gsm, 310, 410, 1), (Radio.lte, 995, 999, 65535), (Radio.wcdma, 0, 0, 0)]
)
def test_areaid_round_trips_through_seven_bytes(area: tuple[Radio, int, int, int]) -> None:
    encoded = codecs.encode_areaid(*area)
    assert len(encoded) == codecs.AREAID_BYTES == 7
    assert codecs.decode_areaid(encoded) == area


def test_areaid_layout_is_big_endian_radio_mcc_mnc_lac() -> None:
    assert codecs.encode_areaid(Radio.wcdma, 262, 2, 513).hex() == "02010600020201"


def test_encode_areaid_rejects_lac_beyond_sixteen_bits_except_for_nr() -> None:
    with pytest.raises(ValueError):
        codecs.encode_areaid(Radio.lte, 310, 410, 65536)
    nr = codecs.encode_areaid(Radio.nr, 310, 410, 0xFFFFFF)
    assert nr.hex() == "040136019a00ffffff"
    assert codecs.decode_areaid(nr) == (Radio.nr, 310, 410, 0xFFFFFF)
    with pytest.raises(ValueError):
        codecs.decode_areaid(b"\x03" + nr[1:])  # nine bytes, but not NR


def test_decode_areaid_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="7 bytes"):
        codecs.decode_areaid(b"\x00" * 11)


@pytest.mark.parametrize(
    ("lat", "lon", "grid"),
    [((-1.12345678), 2.23456789, (-1123, 2235)), (1.234567, 2.345678, (1235, 2346))],
)
def test_datamap_grid_scales_degrees_by_one_thousand(
    lat: float, lon: float, grid: tuple[int, int]
) -> None:
    assert codecs.datamap_grid(lat, lon) == grid


@pytest.mark.parametrize(
    ("grid", "b64"),
    [
        ((0, 0), "AAFfkAACvyA="),
        ((-90000, -180000), "AAAAAAAAAAA="),
        ((90000, 180000), "AAK/IAAFfkA="),
    ],
)
def test_datamap_grid_encoding_matches_spec_examples(grid: tuple[int, int], b64: str) -> None:
    encoded = codecs.encode_datamap_grid(*grid)
    assert base64.b64encode(encoded).decode() == b64
    assert codecs.decode_datamap_grid(encoded) == grid


def test_datamap_grid_zero_is_offset_by_the_range() -> None:
    assert codecs.encode_datamap_grid(0, 0).hex() == "00015f900002bf20"


@pytest.mark.parametrize("grid", [(-1123, 2235), (40001, 3001), (-89999, 179999)])
def test_datamap_grid_round_trips_through_eight_bytes(grid: tuple[int, int]) -> None:
    assert codecs.decode_datamap_grid(codecs.encode_datamap_grid(*grid)) == grid


@pytest.mark.parametrize("grid", [(90001, 0), (-90001, 0), (0, 180001), (0, -180001)])
def test_encode_datamap_grid_rejects_out_of_range(grid: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        codecs.encode_datamap_grid(*grid)


def test_decode_datamap_grid_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="8 bytes"):
        codecs.decode_datamap_grid(b"\x00" * 7)


@pytest.mark.parametrize(
    ("grid", "shard"),
    [((36000, 5000), "ne"), ((35999, 5000), "se"), ((36000, 4999), "nw"), ((35999, 4999), "sw")],
)
def test_datamap_shard_id_splits_at_36_north_and_5_east(grid: tuple[int, int], shard: str) -> None:
    assert codecs.datamap_shard_id(*grid) == shard
    assert shard in codecs.DATAMAP_SHARD_IDS
