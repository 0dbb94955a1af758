"""Health per backend: a circuit breaker, and disabling a backend whose key the provider refuses.

The state lives on the Backend row, so every web and worker process sees the same circuit, and
every change is one UPDATE (compare-and-set where two processes could race).

- Closed: jobs go through. `CIRCUIT_FAILURES` transient failures in a row (5xx, timeouts, connection
  errors; a 429 is the provider's concurrency cap and only pauses the backend) open the circuit.
- Open: no new job is sent until `circuit_open_until` (jobs already at the provider are still polled).
- After the cooldown exactly one job goes through as a trial (`allow_probe`). Its success closes the
  circuit; its transient failure opens it again for another cooldown. Any exchange that goes through
  (a poll of a job already there, too) closes it as well: the provider is answering again. A trial that never reports
  (cancelled, refused for another reason) stops counting after a cooldown, and another may go.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from generations.providers.base import ProviderError
from generations.providers.models import Backend

log = logging.getLogger(__name__)

# The codes the clients give a refused key, whatever the status (Veo answers a bad key with a 400).
AUTH_CODES = frozenset({"invalid_api_key", "unauthorized", "forbidden"})


def _cooldown() -> timedelta:
    return timedelta(seconds=settings.CIRCUIT_COOLDOWN_SECONDS)


def _refresh(backend: Backend) -> None:
    backend.refresh_from_db(
        fields=[
            "enabled",
            "disabled_reason",
            "consecutive_failures",
            "last_failure",
            "circuit_open_until",
            "probe_started_at",
        ]
    )


def record_success(backend: Backend) -> None:
    """A create or poll went through: the failures in a row end, and an open circuit closes."""
    if not (backend.consecutive_failures or backend.circuit_open_until or backend.probe_started_at):
        return  # the usual case: no write on every poll
    closed = (
        Backend.objects.filter(pk=backend.pk)
        .exclude(consecutive_failures=0, circuit_open_until=None, probe_started_at=None)
        .update(consecutive_failures=0, circuit_open_until=None, probe_started_at=None)
    )
    if closed and backend.circuit_open_until:
        log.info("backend %s: circuit closed", backend.name)
    _refresh(backend)


def record_transient_failure(backend: Backend, reason: str) -> None:
    """One more failure in a row; enough of them (or a failed trial job) open the circuit."""
    now = timezone.now()
    Backend.objects.filter(pk=backend.pk).update(
        consecutive_failures=F("consecutive_failures") + 1, last_failure=reason[:300]
    )
    opened = (
        Backend.objects.filter(pk=backend.pk)
        .filter(
            # A trial is under way: it failed (or another job did, which says the same) — open again.
            Q(probe_started_at__isnull=False)
            | Q(circuit_open_until__isnull=True, consecutive_failures__gte=settings.CIRCUIT_FAILURES)
        )
        .update(circuit_open_until=now + _cooldown(), probe_started_at=None)
    )
    if opened:
        log.warning("backend %s: circuit open for %ss (%s)", backend.name, settings.CIRCUIT_COOLDOWN_SECONDS, reason)
    _refresh(backend)


def is_open(backend: Backend, now: datetime) -> bool:
    """True while no new job may go to `backend`: cooling down, or while its one trial job runs."""
    if backend.circuit_open_until is None:
        return False
    if now < backend.circuit_open_until:
        return True
    return backend.probe_started_at is not None and backend.probe_started_at > now - _cooldown()


def allow_probe(backend: Backend) -> bool:
    """After the cooldown, let exactly one job through as a trial (compare-and-set: one winner)."""
    now = timezone.now()
    won = (
        Backend.objects.filter(pk=backend.pk, circuit_open_until__lte=now)
        .filter(Q(probe_started_at__isnull=True) | Q(probe_started_at__lte=now - _cooldown()))
        .update(probe_started_at=now)
        == 1
    )
    _refresh(backend)
    return won


def retry_in(backend: Backend, now: datetime) -> float:
    """Seconds a job held by an open circuit waits before asking again."""
    until = backend.circuit_open_until
    waiting = (until - now).total_seconds() if until is not None else 0
    return max(waiting, settings.GENERATION_POLL_INTERVAL * 5)


def refused_key(exc: ProviderError) -> bool:
    """The provider refused the backend's key (401/403, or a code that says so)."""
    return exc.status in (401, 403) or exc.code.lower() in AUTH_CODES


def disable(backend: Backend, exc: ProviderError) -> str:
    """Take a backend whose key is refused out of routing, saying why; returns what the job should say."""
    reason = f"{backend.name} refused its API key ({exc.message})"[:480] + ". An admin must fix the key."
    if Backend.objects.filter(pk=backend.pk, enabled=True).update(enabled=False, disabled_reason=reason):
        log.error("backend %s disabled: the provider refused its key (%s)", backend.name, exc.code)
    _refresh(backend)
    return f"{reason} The backend is disabled until then."


def refusal_reason(backend: Backend, now: datetime) -> str:
    """Why the router skips a backend whose circuit is open, in words a creator can read."""
    failures = f"circuit open after {backend.consecutive_failures} failures"
    if now < backend.circuit_open_until:
        at = timezone.localtime(backend.circuit_open_until).strftime("%H:%M")
        return f"{backend.name} skipped: {failures}, retrying at {at}."
    return f"{backend.name} skipped: {failures}, a trial job is checking whether it is back."
