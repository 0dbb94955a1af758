"""Test-wide settings. pytest-django loads settings before this file, so they are set directly."""

import os
import tempfile

TEST_ENV = {
    # The simulator runs ~50x faster than real time so a job finishes in well under a second.
    "SIMULATOR_SPEED": 50.0,
    "SIMULATOR_ENABLED": True,
    # A fixed key for the tests (an install gets a random one from seed_demo).
    "SIMULATOR_API_KEYS": ["sim-local-key"],
    "GENERATION_POLL_INTERVAL": 0.05,
    "MEDIA_ROOT": tempfile.mkdtemp(prefix="sora-studio-media-"),
}


def pytest_configure(config):
    from django.conf import settings
    from django_q.conf import Conf

    for name, value in TEST_ENV.items():
        setattr(settings, name, value)
    # Tasks run inline in the test process (django-q2 read its config once, at import).
    settings.Q_CLUSTER["sync"] = True
    Conf.SYNC = True
    # A database file, not :memory:, so the live server, worker threads and worker processes each
    # get their own connection to the same database, as in production.
    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db["TEST"]["NAME"] = os.path.join(tempfile.mkdtemp(prefix="sora-studio-db-"), "test.sqlite3")
