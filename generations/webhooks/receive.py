"""What a completion callback does: verify it the provider's way, refuse a replay, poll the job at once.

The callback's body is a hint, never the truth: the studio does not read the job's result out of it, it
polls the provider, as it would have a little later anyway. So a forged callback that somehow passed
could at most make a job be polled early. A callback about a job the studio does not know (or no longer
runs) is acknowledged (200) and logged, so the provider does not keep delivering it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db.models import Q
from django.utils import timezone

from generations.jobs.models import Generation
from generations.providers.base import ProviderError
from generations.providers.models import Backend
from generations.providers.registry import UnknownProtocol
from generations.providers.webhooks import WebhookRejected
from generations.states import IN_FLIGHT
from generations.webhooks.models import WebhookDelivery
from sora_studio import queue

log = logging.getLogger(__name__)

MAX_ID = 2**63 - 1  # the largest primary key a database holds


@dataclass(frozen=True)
class Outcome:
    """The answer to the provider: an HTTP status and a short plain-text reason."""

    status: int
    reason: str


def receive(backend_id: int, headers, body: bytes) -> Outcome:
    backend = Backend.objects.filter(pk=backend_id).first() if 0 < backend_id <= MAX_ID else None
    try:
        takes_callbacks = backend is not None and backend.spec.webhooks
    except UnknownProtocol:
        takes_callbacks = False
    if not takes_callbacks:
        return Outcome(404, "No backend here takes callbacks.")
    try:
        delivery = backend.client().verify_webhook(headers, body)
    except WebhookRejected as exc:
        log.warning("webhook for backend %s refused: %s", backend.pk, exc)
        return Outcome(503 if exc.retry_later else 400, str(exc))
    except ProviderError as exc:  # the backend's key cannot be read, so its secret cannot be fetched
        log.warning("webhook for backend %s not checked: %s", backend.pk, exc.message)
        return Outcome(503, "The callback cannot be checked right now.")
    if not WebhookDelivery.objects.first_time(backend, delivery.id):
        log.warning("webhook for backend %s refused: delivery %s seen before", backend.pk, delivery.id[:80])
        return Outcome(400, "This delivery was received before.")
    generation = _running_job(backend, delivery.job)
    if generation is None:
        log.info("webhook for backend %s about %s: no such running job, ignored", backend.pk, delivery.job[:80])
        return Outcome(200, "No running job has that id here; ignored.")
    if not poll_now(generation):
        return Outcome(200, "The job is no longer running here; ignored.")
    log.info("generation %s: provider called back, polling now", generation.pk)
    return Outcome(200, "Polling the job now.")


def _running_job(backend: Backend, job: str) -> Generation | None:
    """The running job `job` names: its remote id is that id, or ends with it (fal's `owner/alias/<id>`)."""
    return (
        Generation.objects.filter(backend=backend, status__in=IN_FLIGHT)
        .filter(Q(remote_id=job) | Q(remote_id__endswith=f"/{job}"))
        .first()
    )


def poll_now(generation: Generation) -> bool:
    """Make the job due now and hand it to a worker (the pump would also find it due). False if it ended."""
    if not Generation.objects.filter(pk=generation.pk, status__in=IN_FLIGHT).update(next_poll_at=timezone.now()):
        return False
    queue.advance_on_commit(generation.pk)
    return True
