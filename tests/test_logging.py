"""Start-up output: what an operator sees when a role starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


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
