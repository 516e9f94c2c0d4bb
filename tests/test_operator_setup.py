"""What a new operator runs: the README, the Makefile and the shipped files agree."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ichnaea.repositories.session import MYSQL_DRIVER_HINT

REPO = Path(__file__).resolve().parent.parent


def readme_section(title: str) -> str:
    """The text of the README section headed ``title``, up to the next heading."""
    text = (REPO / "README.md").read_text()
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ )", text, re.M | re.S)
    assert match is not None, f"no README section {title!r}"
    return match.group(1)


def make_dry_run(target: str, tmp_path: Path) -> str:
    done = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path / 'venv'}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_install_mysql_builds_the_mysql_extra_with_its_headers(tmp_path: Path) -> None:
    commands = make_dry_run("install-mysql", tmp_path)
    assert ".ci/ensure-mysql-headers" in commands
    assert "pip install --quiet -e '.[mysql]'" in commands
    assert "make install-mysql" in MYSQL_DRIVER_HINT


def test_readme_mysql_steps_install_the_driver_and_find_the_command() -> None:
    section = readme_section("MySQL/MariaDB, Redis and S3")
    steps = section.split("```")[1]
    assert steps.index("make install-mysql") < steps.index("ichnaea migrate")
    assert "source .venv/bin/activate" in steps
    assert ".venv/bin" in readme_section("The two commands")


def test_readme_documents_where_serve_archives_reports() -> None:
    from ichnaea.repositories.export_configs import ARCHIVE_BATCH, ARCHIVE_NAME, ARCHIVE_TEMPLATE

    section = " ".join(readme_section("The two commands").split())
    assert f"$ICHNAEA_DATA_DIR/{ARCHIVE_NAME}/{ARCHIVE_TEMPLATE}/" in section
    assert f"batches of {ARCHIVE_BATCH:,} reports" in section
    assert "ichnaea replay" in section


def test_readme_says_how_to_replace_the_geoip_database() -> None:
    from ichnaea.geoip import RELOAD_CHECK_INTERVAL_S

    section = " ".join(readme_section("GeoIP").split())
    assert "GEOIP_PATH" in section and "age_in_days" in section
    assert "GeoLite2 City" in section and "DB-IP" in section
    assert f"within {RELOAD_CHECK_INTERVAL_S:g} s" in section
