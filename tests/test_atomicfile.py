"""Atomic file writes: all or nothing, with the asked mode."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ichnaea.atomicfile import write_atomically


def test_a_file_is_created_then_replaced_with_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b.json.gz"
    write_atomically(target, lambda out: out.write(b"one"), mode=0o600)
    assert target.read_bytes() == b"one"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    write_atomically(target, lambda out: out.write(b"two"), mode=0o644)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["b.json.gz"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "b.png"
    target.write_bytes(b"old")

    def half(out: object) -> None:
        out.write(b"partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(target, half, mode=0o644)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.png"]
