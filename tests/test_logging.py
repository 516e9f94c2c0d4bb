"""Start-up output: what an operator sees when a role starts."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from ichnaea.logging import BufferedStreamHandler


def run_python(code: str, tmp_path: Path) -> str:
    env = dict(os.environ, ICHNAEA_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout + done.stderr


def test_web_role_start_logs_no_alembic_plugin_lines(tmp_path: Path) -> None:
    # What `ichnaea web` does: configure logging, then uvicorn imports the app.
    output = run_python(
        "from ichnaea.logging import configure_logging\n"
        "configure_logging('INFO', role='web')\n"
        "import ichnaea.web.asgi\n",
        tmp_path,
    )
    assert "alembic.runtime.plugins" not in output, output
    assert "setup plugin" not in output


def test_info_lines_are_buffered_briefly_and_warnings_written_at_once() -> None:
    written = io.BytesIO()
    stream = io.TextIOWrapper(io.BufferedWriter(written), encoding="utf-8")  # type: ignore[arg-type]
    handler = BufferedStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("tests.buffered")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("first")
        assert written.getvalue() == b""  # buffered, not written yet
        log.warning("second")  # written at once, with what came before it, in order
        assert written.getvalue() == b"INFO first\nWARNING second\n"
        log.info("third")
        deadline = time.monotonic() + 5
        while b"third" not in written.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert written.getvalue().endswith(b"INFO third\n")  # by the flusher thread
    finally:
        log.removeHandler(handler)
        handler.close()
