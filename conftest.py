"""Test-wide set-up that must happen before Django settings load."""

import os
import tempfile

# Tasks run inline in tests (django-q2 reads this once, at import).
os.environ.setdefault("Q_SYNC", "1")
# The simulator runs ~50x faster than real time so a job finishes in well under a second.
os.environ.setdefault("SIMULATOR_SPEED", "50")
os.environ.setdefault("SIMULATOR_ENABLED", "1")
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="sora-studio-media-"))
os.environ.setdefault("GENERATION_POLL_INTERVAL", "0.05")
