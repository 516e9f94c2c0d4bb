"""Fetching the website's libraries (ichnaea.web.site.vendor): local tarballs, no network."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tarfile
from pathlib import Path

import pytest

from ichnaea.web.site import pages, vendor


def tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def pinned(data: bytes, files: dict[str, str]) -> vendor.Package:
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    return vendor.Package("lib", "1.2.3", integrity, files)


def test_vendor_installs_verified_files_once(tmp_path: Path) -> None:
    data = tarball({"package/dist/lib.js": b"lib()", "package/LICENSE": b"MIT", "package/x": b""})
    package = pinned(data, {"package/dist/lib.js": "lib.js", "package/LICENSE": "lib/LICENSE.txt"})
    source = tmp_path / "mirror"
    source.mkdir()
    (source / "lib-1.2.3.tgz").write_bytes(data)
    fetched: list[str] = []

    def fetch(pkg: vendor.Package) -> bytes:
        fetched.append(pkg.tarball)
        return vendor.directory_fetch(source)(pkg)

    target = tmp_path / "vendor"
    assert vendor.install((package,), target, fetch, echo=lambda line: None) == 1
    assert (target / "lib.js").read_bytes() == b"lib()"
    assert (target / "lib" / "LICENSE.txt").read_bytes() == b"MIT"
    assert not (target / "x").exists()
    # Installed at the pinned version: no second download.
    assert vendor.install((package,), target, fetch, echo=lambda line: None) == 0
    assert fetched == ["lib-1.2.3.tgz"]
    assert (
        package.url("https://registry.example/") == "https://registry.example/lib/-/lib-1.2.3.tgz"
    )


def test_vendor_refuses_a_tampered_tarball(tmp_path: Path) -> None:
    data = tarball({"package/lib.js": b"lib()"})
    package = pinned(data, {"package/lib.js": "lib.js"})
    tampered = tarball({"package/lib.js": b"evil()"})
    source = tmp_path / "mirror"
    source.mkdir()
    (source / package.tarball).write_bytes(tampered)
    target = tmp_path / "vendor"
    with pytest.raises(vendor.VendorError, match="integrity check failed"):
        vendor.install((package,), target, vendor.directory_fetch(source), echo=print)
    assert not target.exists()
    # The command says so and fails.
    with pytest.raises(vendor.VendorError, match=r"missing package/other\.js"):
        vendor.extract(pinned(data, {"package/other.js": "o.js"}), data, target)


def test_vendor_command_fails_on_a_tampered_mirror(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "mirror"
    source.mkdir()
    for package in vendor.PACKAGES:
        (source / package.tarball).write_bytes(tarball({"package/LICENSE": b"not it"}))
    assert vendor.main(["--from", str(source), "--target", str(tmp_path / "out")]) == 1
    assert "integrity check failed" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_vendor_pins_every_file_the_pages_use() -> None:
    installed = {name for package in vendor.PACKAGES for name in package.files.values()}
    used = {name.removeprefix("vendor/") for name in (*pages.LEAFLET, *pages.UPLOT)}
    assert used <= installed
    for package in vendor.PACKAGES:
        algorithm, _, digest = package.integrity.partition("-")
        assert algorithm == "sha512" and len(base64.b64decode(digest)) == 64
        assert re.fullmatch(r"\d+\.\d+\.\d+", package.version)
