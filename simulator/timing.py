"""How long a simulated job takes and where it stands at a given moment.

Nothing runs in the background: a job stores when it started and how long it lasts, and its
status and progress are computed whenever someone asks. That keeps the simulator stateless
between requests and correct under any number of web workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

QUEUED_SHARE = 0.15
# A failing job dies about halfway through rendering, after the client has seen progress move.
FAIL_AT_SHARE = 0.55
SLOW_FACTOR = 30

QUEUED = "queued"
IN_PROGRESS = "in_progress"
COMPLETED = "completed"
FAILED = "failed"
TERMINAL = frozenset({COMPLETED, FAILED})


def speed() -> float:
    """Read on every request so tests (and a running server's env) can change it."""
    value = float(getattr(settings, "SIMULATOR_SPEED", 1) or 1)
    return value if value > 0 else 1.0


def duration_for(seconds: int, *, slow: bool = False) -> timedelta:
    """Real providers take longer for longer clips; 5 s + the clip length, at 1x speed."""
    base = (5 + seconds) / speed()
    return timedelta(seconds=base * (SLOW_FACTOR if slow else 1))


def finish_time(created_at: datetime, duration: timedelta, *, fails: bool) -> datetime:
    return created_at + duration * (FAIL_AT_SHARE if fails else 1)


@dataclass(frozen=True)
class Phase:
    status: str
    progress: int
    finished_at: datetime | None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


def phase_at(created_at: datetime, duration: timedelta, *, fails: bool, now: datetime) -> Phase:
    total = max(duration.total_seconds(), 1e-6)
    elapsed = (now - created_at).total_seconds()
    queued_for = total * QUEUED_SHARE
    end = finish_time(created_at, duration, fails=fails)
    if now >= end:
        if fails:
            return Phase(FAILED, _progress(total * FAIL_AT_SHARE, queued_for, total), end)
        return Phase(COMPLETED, 100, end)
    if elapsed < queued_for:
        return Phase(QUEUED, 0, None)
    return Phase(IN_PROGRESS, _progress(elapsed, queued_for, total), None)


def _progress(elapsed: float, queued_for: float, total: float) -> int:
    """Linear 0 -> 99 while rendering; 100 is reserved for a finished job."""
    share = (elapsed - queued_for) / max(total - queued_for, 1e-6)
    return max(0, min(99, int(share * 99)))


def poll_after_ms() -> int:
    """What `openai-poll-after-ms` suggests: about 2 s at real speed, never under 100 ms."""
    return max(100, int(2000 / speed()))


def url_ttl() -> timedelta:
    """How long download links and assets live after completion (an hour, like the real thing)."""
    return timedelta(seconds=int(getattr(settings, "SIMULATOR_URL_TTL", 3600)))
