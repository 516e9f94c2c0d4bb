"""A MySQL URL without the mysqlclient driver stops every command with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Runs the real `ichnaea` entry point with the driver made unimportable, as on
# a `make run` install that lacks the mysql extra.
WITHOUT_DRIVER = (
    "import sys; sys.modules['MySQLdb'] = None; from ichnaea.__main__ import main; main()"
)


def run_without_driver(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        DB_READWRITE_URI="mysql://root@127.0.0.1:3306/location",
        REDIS_URI="redis://127.0.0.1:6379/0",
        ICHNAEA_DATA_DIR=str(tmp_path),
    )
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_DRIVER, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("args", [("migrate",), ("apikey", "list"), ("status",)])
def test_mysql_url_without_driver_names_what_to_install(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    done = run_without_driver(tmp_path, *args)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "mysqlclient" in lines[0] and "make install-mysql" in lines[0], lines[0]
