"""The container entrypoint script dispatches the role argument."""

import os
import subprocess
import sys
from pathlib import Path

ENTRYPOINT = Path(__file__).resolve().parent.parent / "docker" / "entrypoint.sh"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    # `ichnaea` is on PATH inside the image; here it is beside this Python.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, env=env, check=False
    )


def test_role_argument_runs_that_subcommand() -> None:
    done = run("check-build")
    assert done.returncode == 0, done.stderr
    assert "compiled core OK" in done.stdout


def test_role_arguments_are_passed_through() -> None:
    done = run("apikey", "--help")
    assert done.returncode == 0
    assert "Manage API keys" in done.stdout


def test_unknown_role_is_refused_with_the_list_of_roles() -> None:
    done = run("frobnicate")
    assert done.returncode == 64
    assert "unknown role 'frobnicate'" in done.stderr
    assert "scheduler" in done.stderr
