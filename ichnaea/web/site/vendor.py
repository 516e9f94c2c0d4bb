"""The website's JavaScript libraries, fetched from the npm registry at install time.

The repository does not carry third-party code: ``make run``, ``make test``
and the Dockerfile run ``python -m ichnaea.web.site.vendor``, which, for each
pinned package of :data:`PACKAGES`,

1. downloads its tarball (``<registry>/<name>/-/<name>-<version>.tgz``; the
   registry is ``npm_config_registry`` when set, as for npm itself, else
   https://registry.npmjs.org) — npm itself is not needed;
2. checks it against the pinned ``sha512-…`` integrity string (the one
   ``npm view <name>@<version> dist.integrity`` prints, and package-lock
   files record) and refuses it otherwise;
3. extracts the few files the pages use into ``static/vendor/`` beside this
   module (git-ignored), each written atomically, and records what it
   installed in ``static/vendor/installed.json``.

A package already installed at its pinned version is skipped, so running it
again needs no network. ``--from DIR`` takes the tarballs from a directory
instead (an offline mirror, or the tests). Without these files the pages
still render and say what to run (:mod:`ichnaea.web.site.pages`).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ichnaea.atomicfile import write_atomically

DEFAULT_REGISTRY = "https://registry.npmjs.org"
VENDOR_DIR = Path(__file__).parent / "static" / "vendor"
INSTALLED_RECORD = "installed.json"
FETCH_TIMEOUT_S = 60
COMMAND = "python -m ichnaea.web.site.vendor"


class VendorError(RuntimeError):
    """A package could not be fetched, failed its integrity check or lacks a file."""


@dataclass(frozen=True, slots=True)
class Package:
    """One pinned npm package and the files taken from it (tarball member → file name)."""

    name: str
    version: str
    integrity: str
    files: Mapping[str, str]

    @property
    def tarball(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    def url(self, registry: str) -> str:
        return f"{registry.rstrip('/')}/{self.name}/-/{self.tarball}"


PACKAGES: tuple[Package, ...] = (
    Package(
        "leaflet",
        "1.9.4",
        "sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==",
        {
            "package/dist/leaflet.js": "leaflet.js",
            "package/dist/leaflet.css": "leaflet.css",
            "package/dist/images/layers.png": "images/layers.png",
            "package/dist/images/layers-2x.png": "images/layers-2x.png",
            "package/dist/images/marker-icon.png": "images/marker-icon.png",
            "package/dist/images/marker-icon-2x.png": "images/marker-icon-2x.png",
            "package/dist/images/marker-shadow.png": "images/marker-shadow.png",
            "package/LICENSE": "leaflet.LICENSE.txt",
        },
    ),
    Package(
        "uplot",
        "1.6.32",
        "sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==",
        {
            "package/dist/uPlot.iife.min.js": "uPlot.iife.min.js",
            "package/dist/uPlot.min.css": "uPlot.min.css",
            "package/LICENSE": "uplot.LICENSE.txt",
        },
    ),
)

Fetch = Callable[[Package], bytes]


def verify(package: Package, data: bytes) -> None:
    """Raise :class:`VendorError` unless ``data`` matches the package's sha512 integrity."""
    algorithm, _, expected = package.integrity.partition("-")
    if algorithm != "sha512":
        raise VendorError(f"{package.name}: unsupported integrity {package.integrity!r}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise VendorError(
            f"{package.tarball}: integrity check failed (expected sha512-{expected}, "
            f"got sha512-{actual}); refusing to install it"
        )


def _write(path: Path, content: bytes) -> None:
    write_atomically(path, lambda out: out.write(content), mode=0o644)


def extract(package: Package, data: bytes, target: Path) -> None:
    """Write the package's files from its (verified) tarball into ``target``."""
    wanted = dict(package.files)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive:
            name = wanted.pop(member.name, None)
            if name is None:
                continue
            source = archive.extractfile(member) if member.isfile() else None
            if source is None:
                raise VendorError(f"{package.tarball}: {member.name} is not a file")
            _write(target / name, source.read())
    if wanted:
        raise VendorError(f"{package.tarball}: missing {', '.join(sorted(wanted))}")


def _read_record(target: Path) -> dict[str, str]:
    try:
        record = json.loads((target / INSTALLED_RECORD).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def is_installed(package: Package, target: Path) -> bool:
    """Whether ``target`` holds the package's files at its pinned version and integrity."""
    pinned = f"{package.version} {package.integrity}"
    return _read_record(target).get(package.name) == pinned and all(
        (target / name).is_file() for name in package.files.values()
    )


def install(
    packages: tuple[Package, ...], target: Path, fetch: Fetch, *, echo: Callable[[str], object]
) -> int:
    """Fetch, verify and extract every package not yet installed; return how many were."""
    installed = 0
    for package in packages:
        if is_installed(package, target):
            continue
        data = fetch(package)
        verify(package, data)
        extract(package, data, target)
        record = {**_read_record(target), package.name: f"{package.version} {package.integrity}"}
        _write(
            target / INSTALLED_RECORD,
            (json.dumps(record, indent=2, sort_keys=True) + "\n").encode(),
        )
        echo(f"vendor: {package.name} {package.version} ({len(data):,} bytes, integrity OK)")
        installed += 1
    return installed


def registry_fetch(registry: str) -> Fetch:
    def fetch(package: Package) -> bytes:
        url = package.url(registry)
        try:
            with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as reply:
                data: bytes = reply.read()
        except OSError as exc:
            raise VendorError(f"cannot download {url}: {exc}") from exc
        return data

    return fetch


def directory_fetch(directory: Path) -> Fetch:
    def fetch(package: Package) -> bytes:
        try:
            return (directory / package.tarball).read_bytes()
        except OSError as exc:
            raise VendorError(f"cannot read {directory / package.tarball}: {exc}") from exc

    return fetch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=COMMAND, description="Install the website's pinned JavaScript libraries."
    )
    parser.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="Take <name>-<version>.tgz from this directory instead of the npm registry.",
    )
    parser.add_argument(
        "--target", type=Path, default=VENDOR_DIR, help=f"Install here [default: {VENDOR_DIR}]."
    )
    args = parser.parse_args(argv)
    if args.source is not None:
        fetch = directory_fetch(args.source)
    else:
        # npm's own variable, in npm's own (lower-case) spelling or upper case.
        registry = os.environ.get("npm_config_registry") or os.environ.get(  # noqa: SIM112
            "NPM_CONFIG_REGISTRY"
        )
        fetch = registry_fetch(registry or DEFAULT_REGISTRY)
    try:
        install(PACKAGES, args.target, fetch, echo=lambda line: sys.stdout.write(line + "\n"))
    except VendorError as exc:
        sys.stderr.write(f"vendor: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
