"""Real worker processes for tests: qcluster (and the pump) on the test database."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url(db: dict) -> str:
    """The test database, as a URL the worker processes can open."""
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return (
        f"postgres://{db['USER'] or 'postgres'}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


def worker_env(settings, **extra) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "SECRET_KEY": settings.SECRET_KEY,
        # The simulator served by a web subprocess must accept the key the test backends use.
        "SIMULATOR_API_KEYS": ",".join(settings.SIMULATOR_API_KEYS),
        "Q_SYNC": "0",
        "Q_WORKERS": "2",
        "GENERATION_POLL_INTERVAL": "0.3",
        "PUMP_TICK_SECONDS": "0.2",
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def start(*command, env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(10)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
