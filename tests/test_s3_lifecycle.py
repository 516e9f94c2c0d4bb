"""docker/s3-lifecycle.json: the expiry rules the README tells an operator to apply.

The prefixes come from the code (the cell export's ``EXPORT_PREFIX``, the
map's ``TILES_PREFIX``) and from the s3 export URL the README recommends,
written through the real exporter; the policy is applied to an S3 API.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ichnaea.cli.tiles import TILES_PREFIX
from ichnaea.metrics import Metrics
from ichnaea.pipeline.export.exporters import Partition, S3Exporter
from ichnaea.pipeline.public.cellexport import EXPORT_PREFIX
from tests.fixtures_s3 import S3Bucket

REPO = Path(__file__).resolve().parent.parent
POLICY = REPO / "docker" / "s3-lifecycle.json"


def policy() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(POLICY.read_text())
    return loaded


def expiry_days(key: str) -> int | None:
    """Days after which the policy deletes ``key``; None when no rule expires it."""
    days = [
        rule["Expiration"]["Days"]
        for rule in policy()["Rules"]
        if rule["Status"] == "Enabled"
        and "Expiration" in rule
        and key.startswith(rule["Filter"]["Prefix"])
    ]
    assert len(days) <= 1, f"{key} matches several expiry rules"
    return days[0] if days else None


def recommended_backup_url() -> str:
    """The s3 export URL of the README's S3 instructions, with BUCKET in it."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("### MySQL/MariaDB, Redis and S3", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"(s3://BUCKET/[^'`\s]+)", section)
    assert match is not None, "the README recommends no s3 export URL"
    return match.group(1)


def test_policy_expires_public_exports_within_days_and_keeps_tiles() -> None:
    days = expiry_days(f"{EXPORT_PREFIX}MLS-diff-cell-export-2026-12-06T130000.csv.gz")
    assert days is not None and 1 <= days <= 7
    assert expiry_days(f"{TILES_PREFIX}0/0/0.png") is None
    assert expiry_days(f"{TILES_PREFIX}data.json") is None


def test_policy_expires_report_backups_the_exporter_writes_after_a_year(
    s3_bucket: S3Bucket,
) -> None:
    url = recommended_backup_url().replace("BUCKET", s3_bucket.name)
    exporter = S3Exporter("backup", url, metrics=Metrics(), endpoint_url=s3_bucket.endpoint_url)
    try:
        report = {"position": {"latitude": 1.0, "longitude": 2.0}}
        exporter.send([{"report": report}], Partition("gnss", "k"))
    finally:
        exporter.close()
    (key,) = s3_bucket.objects()
    assert expiry_days(key) == 365


def test_policy_is_accepted_by_an_s3_api(s3_bucket: S3Bucket) -> None:
    # What `aws s3api put-bucket-lifecycle-configuration --lifecycle-configuration
    # file://docker/s3-lifecycle.json` sends.
    s3_bucket.client.put_bucket_lifecycle_configuration(
        Bucket=s3_bucket.name, LifecycleConfiguration=policy()
    )
    stored = s3_bucket.client.get_bucket_lifecycle_configuration(Bucket=s3_bucket.name)
    assert {rule["ID"] for rule in stored["Rules"]} == {rule["ID"] for rule in policy()["Rules"]}


def test_readme_names_the_policy_file_and_how_to_apply_it() -> None:
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "put-bucket-lifecycle-configuration" in readme
    assert "file://docker/s3-lifecycle.json" in readme
