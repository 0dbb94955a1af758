"""Production settings refuse the development secret."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def check(**env):
    environment = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_debug_off_without_a_secret_key_refuses_to_start():
    result = check(DEBUG="false", ALLOWED_HOSTS="example.com")
    assert result.returncode != 0 and "Set SECRET_KEY" in result.stderr


def test_debug_off_with_a_secret_key_starts():
    result = check(DEBUG="false", ALLOWED_HOSTS="example.com", SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
