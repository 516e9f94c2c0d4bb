"""Re-ingest archived reports (``ichnaea replay``).

The archive exporters (``s3``, ``file``) write gzip JSON objects
``{"items": [report, ...]}``; a plain ``.json`` file with the same body, or
a saved ``/v2/geosubmit`` request, works too. Each file's reports are read
with the submit API's lenient v2 parser and queued for the internal
exporter, so they go through exactly the validation and station updates a
fresh submission goes through (to rebuild stations after an algorithm
change). They are not copied to the other export targets again, unless
``--through-incoming`` asks for the whole fan-out.

A file that cannot be read is reported with its path (and, for JSON
errors, line and column) and skipped; the others are still replayed.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ichnaea.errors import ParseError
from ichnaea.reports.formats import parse_v2

ARCHIVE_SUFFIXES = (".json.gz", ".json")


class ReplayFileError(Exception):
    """A file that could not be replayed; the message names the file and the place."""


@dataclass
class ReplaySummary:
    files: int = 0
    reports: int = 0
    failed: list[str] = field(default_factory=list)


def archive_files(paths: Iterable[Path]) -> list[Path]:
    """The files to replay: given files, and archive files under given directories, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p for p in path.rglob("*") if p.is_file() and p.name.endswith(ARCHIVE_SUFFIXES)
                )
            )
        elif path.exists():
            found.append(path)
        else:
            raise ReplayFileError(f"{path}: no such file or directory")
    return found


def read_reports(path: Path) -> list[dict[str, Any]]:
    """The reports of one archive file, normalised like a fresh submission."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise ReplayFileError(f"{path}: cannot read: {exc}") from exc
    try:
        data = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise ReplayFileError(f"{path}: not UTF-8 text: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ReplayFileError(f"{path}: line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    try:
        return parse_v2(data)
    except ParseError as exc:
        raise ReplayFileError(f"{path}: no 'items' list of reports ({exc})") from exc


def export_items(
    reports: Iterable[dict[str, Any]], api_key: str | None, *, with_source: bool
) -> Iterator[dict[str, Any]]:
    """Queue items for the internal export queue, or for ``update_incoming``."""
    for report in reports:
        item: dict[str, Any] = {"api_key": api_key, "report": report}
        if with_source:
            item["source"] = (report.get("position") or {}).get("source") or "gnss"
        yield item
