"""How the role commands start their servers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner

from ichnaea.__main__ import cli


def test_web_leaves_forwarded_headers_to_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uvicorn would otherwise rewrite the peer address from X-Forwarded-For by
    # its own rules before ichnaea.api.context applies FORWARDED_ALLOW_IPS.
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    env = {
        "ICHNAEA_DATA_DIR": str(tmp_path),
        "REDIS_URI": "redis://127.0.0.1:1/0",
        "FORWARDED_ALLOW_IPS": "10.0.0.0/8",
    }
    result = CliRunner().invoke(cli, ["web"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(calls) == 1 and calls[0]["proxy_headers"] is False
