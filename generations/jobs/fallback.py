"""After a confirmed failure, a job moves to the next backend its policy allows, waits, or degrades.

Confirmed means the backend said no, or never accepted the create: a refused or failed create, a
refused key, an open circuit, a job the provider failed. Never an ambiguous create (those stay in
the reconcile path: the job may exist there), never a moderation refusal (the creator's to fix, not
to launder through another provider), never a job pinned to its backend, never a job already charged
(it would be paid for twice), and never more than FALLBACK_LIMIT moves.

A move is one compare-and-set: the job goes back to `queued` on the new backend with a fresh
idempotency key and an empty `prompt_sent` (written for the new backend when it is sent), the try
that failed becomes an `Attempt` row, and the job's estimate is moved to the new backend's quote,
in the same transaction, under the budgets (so it is moved, never doubled).

A job with a start or end image goes only where the images can go (the router says why not elsewhere).
A job with characters goes only where they are or can be bound. If there is no such backend, its
series says: `wait` (default) for a backend that can carry them, or `degrade` (send it without them,
flagged on the card).
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from characters import mentions
from generations.billing import budgets
from generations.billing.models import CostEntry, CostKind
from generations.jobs import router
from generations.jobs.models import PINNED, Attempt, CharacterFallback, Generation
from generations.providers import health
from generations.providers.models import Backend
from generations.states import Status
from sora_studio import queue

log = logging.getLogger(__name__)

# How each protocol words a moderation refusal (OpenAI's moderation_blocked, Runway's SAFETY.*,
# fal's content_policy_violation, Replicate's E005 and "flagged as sensitive").
_MODERATION = re.compile(r"moderat|safety|content.?policy|flagged|sensitive|nsfw|\bE005\b", re.IGNORECASE)

MOVED, WAITING = "moved", "waiting"


def is_moderation(code: str, message: str = "") -> bool:
    return bool(_MODERATION.search(code or "")) or bool(_MODERATION.search((message or "")[:300]))


def fall_back(generation: Generation, code: str, message: str) -> str:
    """Move `generation` off its backend after a confirmed failure (`code`, `message`).

    Returns MOVED (queued on another backend, or on the same one after a wait) or WAITING (left queued
    where it is until a backend can carry its characters), or "" when it cannot move: the caller ends it.
    """
    if generation.routing_policy in ("", PINNED) or is_moderation(code, message):
        return ""
    if CostEntry.objects.filter(generation=generation, kind=CostKind.CHARGE).exists():
        return ""
    tried = list(generation.earlier_attempts.values_list("backend_id", flat=True))
    if len(tried) >= settings.FALLBACK_LIMIT:
        return ""
    failed = Backend.objects.get(pk=generation.backend_id)
    characters = characters_of(generation)
    args = (generation.model, str(generation.seconds), generation.size)
    images = generation.image_roles  # a job that starts from an image moves only where the image can go
    results = router.candidates(characters, *args, exclude=[*tried, failed.pk], images=images)
    try:
        route = router.best(results, characters, generation.routing_policy)
    except router.NoBackend as exc:
        if not characters:
            return ""
        if series_says(generation.scene if generation.scene_id else None) == CharacterFallback.DEGRADE:
            try:
                results = router.candidates([], *args, exclude=[*tried, failed.pk], images=images)
                route = router.best(results, [], "cost")
            except router.NoBackend:
                return ""
            return _move(generation, failed, route, code, message, degraded=True)
        return _wait(generation, failed, code, message, str(exc))
    return _move(generation, failed, route, code, message)


def characters_of(generation: Generation) -> list:
    """The job's characters, in the order its prompt mentions them, with what routing needs loaded."""
    by_handle = {c.handle: c for c in generation.characters.prefetch_related("bindings", "stills")}
    return [by_handle[h] for h in mentions.find_handles(generation.prompt) if h in by_handle]


def series_says(scene) -> str:
    """What a scene's series does when no backend up can carry its characters (a video outside a series waits)."""
    return getattr(getattr(scene, "series", None), "character_fallback", "") or CharacterFallback.WAIT


def _move(
    generation: Generation,
    failed: Backend,
    route: router.Route,
    code: str,
    message: str,
    *,
    degraded: bool = False,
    delay: float = 0,
    reason: str = "",
) -> str:
    """Queue the job again on `route.backend` (perhaps the same one, after `delay` seconds)."""
    now = timezone.now()
    number = generation.earlier_attempts.count() + 1
    moved_to = route.backend
    if not reason:
        reason = f"{failed.name} failed ({code}): moved to {moved_to.name}. {route.reason}"
        if degraded:
            reason = f"{failed.name} failed ({code}) and no backend up can carry the characters: {route.reason}"
    old_status, old_remote_id = generation.status, generation.remote_id
    started_at = generation.submitted_at or generation.created_at
    try:
        with transaction.atomic():
            won = generation.transition(
                old_status,
                Status.QUEUED,
                note=reason,
                backend=moved_to,
                remote_id="",
                webhook=False,
                idempotency_key=f"sora-studio-{generation.uuid.hex}-{number + 1}",
                prompt_sent="",
                characters_sent=[],
                characters_travel={},
                degraded=degraded or generation.degraded,
                attempts=0,
                poll_errors=0,
                download_errors=0,
                progress=0,
                submitted_at=None,
                routing_reason=reason[:1000],
                routing_candidates=route.candidates or generation.routing_candidates,
                lease_until=None,
                next_poll_at=now + timedelta(seconds=delay),
                error_code="",
                error_message="",
            )
            if not won:
                return ""
            Attempt.objects.create(
                generation=generation,
                number=number,
                backend=failed,
                remote_id=old_remote_id,
                error_code=code[:80],
                error_message=message,
                started_at=started_at,
                ended_at=now,
            )
            if moved_to.pk != failed.pk:
                CostEntry.objects.move_estimate(
                    generation,
                    moved_to,
                    route.quote.amount,
                    route.quote.price,
                    note=f"{route.quote.describe} (moved from {failed.name})",
                )
                # The moved estimate is counted already: nothing more is added.
                budgets.check(generation.owner, moved_to, Decimal(0))
            if not delay:
                queue.advance_on_commit(generation.pk)
    except budgets.BudgetExceeded as exc:
        log.info("generation %s: no fallback to %s: %s", generation.pk, moved_to.name, exc)
        generation.refresh_from_db()
        return ""
    log.info("generation %s: %s", generation.pk, reason)
    return MOVED


def _wait(generation: Generation, failed: Backend, code: str, message: str, why: str) -> str:
    """No backend up can carry the characters: wait for one. The job goes back to its queue on the same
    backend, tried again once its circuit may close (a fresh try: a new idempotency key)."""
    now = timezone.now()
    delay = max(health.retry_in(failed, now), settings.CIRCUIT_COOLDOWN_SECONDS / 4, 1.0)
    if generation.status == Status.QUEUED:
        # Never sent: nothing to record as a try; look again later.
        note = f"Waiting for a backend that can carry the characters. {why}"[:1000]
        Generation.objects.filter(pk=generation.pk, status=Status.QUEUED).update(
            routing_reason=note, lease_until=None, next_poll_at=now + timedelta(seconds=delay), updated_at=now
        )
        return WAITING
    reason = f"{failed.name} failed ({code}); waiting for a backend that can carry the characters. {why}"
    same = router.Route(failed, None, reason, generation.routing_policy)  # the estimate stays as it is
    return _move(generation, failed, same, code, message, delay=delay, reason=reason)
