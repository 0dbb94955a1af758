"""A generation's life: start, submit, poll, store, charge — each step safe to run twice.

The rules that keep work from being lost or charged twice:
- every state change is compare-and-set on `status` (Generation.transition);
- a worker holds a short lease (`lease_until`) while it talks to the provider; a job whose lease
  ran out (its worker died) is picked up again by the pump;
- a create whose answer was lost is re-sent only to a backend that honours idempotency keys;
  otherwise it is reconciled against the provider's job list, or ended with a clear reason;
- assets are stored before the job is marked completed (provider links expire);
- the charge is written in the same transaction as the winning transition, and the ledger's
  unique constraint refuses a second one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import tempfile
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Model, Value
from django.db.models.functions import Concat
from django.utils import timezone

from characters import mentions, registry, stills
from generations.billing import budgets, pricing
from generations.billing.models import CostEntry, CostKind
from generations.jobs import claims, fallback, images, pacing, router
from generations.jobs.models import (
    PINNED,
    CharacterFallback,
    CreatorSettings,
    Generation,
    GenerationImage,
    add_event,
)
from generations.providers import health
from generations.providers.base import (
    COMPLETED,
    FAILED,
    REFERENCE_IMAGES,
    LostCreate,
    ProviderError,
    ReferenceImage,
    RemoteJob,
)
from generations.providers.models import Backend, Price
from generations.states import ACTIVE, IN_FLIGHT, Status
from sora_studio import queue

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from characters.models import Character

log = logging.getLogger(__name__)

MAX_POLL_ERRORS = 30
MAX_DOWNLOAD_ERRORS = 20
DOWNLOAD_RETRY_MAX_SECONDS = 15


class GenerationRefused(ValueError):
    """A request to generate that cannot be accepted; `field` names the form field at fault, `code` the
    kind of refusal (an API answers each kind its own way): "invalid", "invalid_image", "unknown_character",
    "no_backend", "over_budget", "not_completed", "still_running"."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.field = field
        self.code = code


# --- Starting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationRequest:
    """What a creator (or a scene, a retry, a remix) asks for; `start` validates and routes it.

    `backend` None routes automatically, by `policy` (blank: the scene's series' policy, else the
    creator's default, else cost). A `client_token` (the form's one-time token) makes a second
    start of the same request find the first job instead of making a twin. `start_image` and
    `end_image` (generations.jobs.images.ImageInput: an upload, a still, the last frame of a video) are
    the video's first and last frame: checked, cropped to `size`, kept with the job, and sent only to a
    backend that takes them.
    """

    owner: User
    prompt: str
    model: str
    seconds: int
    size: str
    backend: Backend | None = None
    scene: Model | None = None  # a storyboard's Scene (storyboards sit above jobs: not imported here)
    remix_of: Generation | None = None
    client_token: str = ""
    policy: str = ""
    start_image: images.ImageInput | None = None
    end_image: images.ImageInput | None = None


@dataclass(frozen=True)
class Started:
    """What `start` did: the job, what the budgets warn about it, and whether it is new (False: the
    request's client token found the job a first start made)."""

    generation: Generation
    warnings: list[str] = field(default_factory=list)
    created: bool = True


def start(request: GenerationRequest) -> Started:
    """Validate, route, estimate and queue one generation. Nothing is sent before the commit."""
    if request.client_token and (twin := _twin(request)):
        return twin
    prompt = (request.prompt or "").strip()
    if not prompt:
        raise GenerationRefused("Write a prompt.", "prompt")
    if len(prompt) > 32000:
        raise GenerationRefused("A prompt can be at most 32,000 characters.", "prompt")
    fitted = _fitted_images(request)  # checked before anything is routed, let alone sent
    with _routing_transaction():
        return _route_and_create(request, prompt, fitted)


def _routing_transaction():
    """What `start` reads its route in; the job's writes (with the budget check) are a transaction of their own
    inside it (`_create`).

    PostgreSQL: the same transaction, so one snapshot and one transaction instead of one per read. SQLite: none,
    the reads go first on their own. A write transaction there holds the whole database from its first statement
    (IMMEDIATE), and one that also did the routing held it for most of a start: a burst of new jobs then kept
    every pump claim and step waiting (SQLite's busy wait is not first come, first served) until the burst ended."""
    if connection.vendor == "sqlite":
        return contextlib.nullcontext()
    return transaction.atomic()


def _route_and_create(request: GenerationRequest, prompt: str, fitted: dict[str, images.Fitted]) -> Started:
    try:
        characters = mentions.resolve(request.owner, prompt)
    except mentions.MentionError as exc:
        raise GenerationRefused(str(exc), "prompt", "unknown_character") from None
    policy = request.policy or default_policy(request.owner, request.scene)
    try:
        # Offers list seconds as strings ("4"): the router compares them as written.
        route = router.choose(
            characters,
            request.model,
            str(request.seconds),
            request.size,
            backend=request.backend,
            policy=policy,
            images=tuple(fitted),
        )
    except router.NoBackend as exc:
        route = _route_in_outage(request, characters, policy) if request.backend is None else None
        if route is None:
            # A character problem reads best next to the prompt, an offer problem next to the backend.
            field_name = "prompt" if characters and "@" in str(exc) else "backend"
            raise GenerationRefused(str(exc), field_name, "no_backend") from None
    if route.degraded:
        rendered = mentions.render_without(prompt, characters)
    else:
        # A character still to bind there is written into the prompt when the job is sent, once it is ready.
        rendered = None if route.to_bind else mentions.render(prompt, characters, route.backend)
        if rendered is not None and images.START in fitted:
            rendered = _stills_stay_home(rendered, route.backend)
    try:
        return _create(
            replace(request, prompt=prompt), route=route, rendered=rendered, characters=characters, fitted=fitted
        )
    except IntegrityError:
        twin = _twin(request) if request.client_token else None
        if twin is None:
            raise
        return twin  # a simultaneous double-click: the other request created it


def _fitted_images(request: GenerationRequest) -> dict[str, images.Fitted]:
    """The request's start and end images, checked and cropped to the video's size, by role. GenerationRefused
    (on the image's own field) for one that cannot be used: nothing is routed or sent then."""
    if request.end_image is not None and request.start_image is None:
        raise GenerationRefused("An end image needs a start image too.", "start_image", "invalid_image")
    fitted = {}
    for role, given in ((images.START, request.start_image), (images.END, request.end_image)):
        if given is None:
            continue
        try:
            fitted[role] = images.prepare(given, request.size)
        except images.ImageProblem as exc:
            raise GenerationRefused(
                f"The {images.ROLE_LABELS[role]}: {exc}", f"{role}_image", "invalid_image"
            ) from None
    return fitted


def _stills_stay_home(rendered: mentions.Rendered, backend: Backend) -> mentions.Rendered:
    """On a protocol the characters reach as stills, a start image is the first frame instead: the stills are
    not sent, and the characters travel by their names (and the picture)."""
    if not backend.takes_reference_images:
        return rendered
    note = "its name only (the start image is the first frame, so its stills were not sent)"
    return replace(rendered, travel=dict.fromkeys(rendered.travel, note))


def _route_in_outage(request: GenerationRequest, characters: list[Character], policy: str) -> router.Route | None:
    """A scene whose characters only a backend that is down can carry: its series says whether it waits
    there for the backend to come back, or goes now without its characters (flagged). None otherwise."""
    if not characters or request.scene is None:
        return None
    args = (request.model, str(request.seconds), request.size)
    roles = tuple(
        role for role, given in ((images.START, request.start_image), (images.END, request.end_image)) if given
    )
    try:
        if fallback.series_says(request.scene) == CharacterFallback.DEGRADE:
            route = router.best(router.candidates([], *args, images=roles), [], policy)
            why = "No backend up can carry the characters, so they are left out (the series says so)."
            return replace(route, reason=f"{why} {route.reason}", degraded=True)
        route = router.best(router.candidates(characters, *args, despite_outage=True, images=roles), characters, policy)
    except router.NoBackend:
        return None
    return replace(route, reason=f"Waits for {route.backend.name} to come back (the series says so). {route.reason}")


def default_policy(owner: User, scene: Model | None = None) -> str:
    """The routing policy of a video that does not name one: its series', else the creator's default."""
    series_policy = getattr(getattr(scene, "series", None), "routing_policy", "")
    return series_policy or CreatorSettings.policy_for(owner)


def _twin(request: GenerationRequest) -> Started | None:
    twin = Generation.objects.filter(owner=request.owner, client_token=request.client_token).first()
    return Started(twin, created=False) if twin is not None else None


def _create(
    request: GenerationRequest,
    *,
    route: router.Route,
    rendered: mentions.Rendered | None,
    characters: list[Character],
    fitted: dict[str, images.Fitted],
) -> Started:
    # A savepoint only where a simultaneous twin can make the insert fail (a client token): the caller then reads
    # the twin in the same transaction (PostgreSQL's routing transaction, which a failed statement would end).
    with transaction.atomic(savepoint=bool(request.client_token)):
        try:
            warnings = budgets.check(request.owner, route.backend, route.quote.amount)
        except budgets.BudgetExceeded as exc:
            raise GenerationRefused(str(exc), "backend", "over_budget") from None
        generation = Generation.objects.create(
            owner=request.owner,
            scene=request.scene,
            remix_of=request.remix_of,
            backend=route.backend,
            prompt=request.prompt,
            prompt_sent=rendered.prompt if rendered else "",
            characters_sent=rendered.character_ids if rendered else [],
            characters_travel=rendered.travel if rendered else {},
            model=request.model,
            seconds=int(request.seconds),
            size=request.size,
            routing_policy=route.policy,
            degraded=route.degraded,
            routing_candidates=route.candidates,
            routing_reason=route.reason[:1000],
            client_token=request.client_token[:64],
            next_poll_at=timezone.now(),  # due now: the pump (or, in sync mode, this process) takes its first step
        )
        if characters:  # a new job has none to replace: set() would read them first
            generation.characters.add(*characters)
        for role, image in fitted.items():
            _keep_image(generation, role, image)
        for character in route.to_bind:
            registry.bind(character, route.backend)  # registration starts now, beside the queue
        add_event(generation.pk, Status.QUEUED, timezone.now(), route.reason[:300])  # as every state change writes it
        CostEntry.objects.record(
            kind=CostKind.ESTIMATE,
            amount=route.quote.amount,
            backend=route.backend,
            owner=request.owner,
            generation=generation,
            price=route.quote.price,
            note=route.quote.describe,
            characters=[character.pk for character in characters],
        )
        queue.advance_on_commit(generation.pk)
    return Started(generation, warnings)


def _keep_image(generation: Generation, role: str, image: images.Fitted) -> None:
    """Store a start or end image with the job, as it will be sent (the storage API, like the video)."""
    kept = GenerationImage(
        generation=generation,
        role=role,
        source=image.source,
        note=image.note[:200],
        width=image.width,
        height=image.height,
    )
    kept.image.save(f"{role}.jpg", ContentFile(image.content), save=False)
    kept.save()


# --- The worker side -----------------------------------------------------------------------


def advance(generation_id: int, *, held_until=None, known: Generation | None = None) -> Generation | None:
    """One step for one job, whatever state it is in. Safe to call any number of times.

    `held_until`: the caller took the job's lease already (the pump, handing it to its own thread), until then.
    `known`: with `held_until`, the job as the caller's last step on it left it; the lease was taken by a claim
    that found its status and due time unchanged since, or kept by the step's own last write (pump._hold), so it
    is not read again.
    Returns the job as the step left it (its status and next due time, as far as this step knows them), or None."""
    if known is not None and held_until is not None:
        generation = known
        generation.lease_until = held_until
    else:
        generation = claims.read(generation_id)
        if generation is None:
            return None
    if generation.is_terminal:
        return generation
    if timezone.now() >= generation.deadline:
        generation.time_out()
        return generation
    if held_until is not None:
        if generation.lease_until != held_until:
            return None  # taken over since (the lease ran out)
    elif not _claim(generation):
        return None  # another worker holds it
    try:
        if generation.status == Status.QUEUED:
            submit(generation)
        elif generation.status == Status.SUBMITTING:
            if getattr(generation, "slot_handed_on", False):
                # Moved to submitting a moment ago, on this thread, by the transaction that ended the job before it.
                _send_create(generation, generation.backend)
            else:
                # The worker that was submitting died before it learnt the answer.
                resolve_lost_submit(generation)
        else:
            poll(generation)
    except Exception:
        # A bug or an outage of our own: keep the job, try again later, leave a trace.
        log.exception("generation %s: step failed", generation.pk)
        _release(generation, delay=_backoff(generation.poll_errors + 1))
        Generation.objects.filter(pk=generation.pk).update(poll_errors=F("poll_errors") + 1)
        return None
    return generation


def _claim(generation: Generation) -> bool:
    now = timezone.now()
    lease = now + timedelta(seconds=settings.GENERATION_LEASE_SECONDS)
    won = (
        Generation.objects.filter(pk=generation.pk, status=generation.status).unleased(now).update(lease_until=lease)
        == 1
    )
    if won:
        generation.lease_until = lease
    return won


def _release(generation: Generation, delay: float) -> None:
    Generation.objects.filter(pk=generation.pk, status__in=ACTIVE).update(
        lease_until=None, next_poll_at=timezone.now() + timedelta(seconds=delay), updated_at=timezone.now()
    )


def _backoff(errors: int, hint: float | None = None) -> float:
    """Exponential backoff with full jitter, never shorter than what the provider asked for."""
    base = settings.GENERATION_POLL_INTERVAL * (2 ** min(errors, 8))
    delay = random.uniform(base / 2, base)
    return min(max(delay, hint or 0), settings.GENERATION_MAX_POLL_INTERVAL * 4)


def submit(generation: Generation) -> None:
    backend = generation.backend  # read with the job a moment ago
    if not backend.enabled:
        reason = backend.disabled_reason or f"{backend.name} was disabled by an admin."
        if not fallback.fall_back(generation, "backend_disabled", reason):
            generation.fail("backend_disabled", f"{backend.name} is disabled: {reason}")
        return
    if backend.is_paused():
        _release(generation, delay=(backend.paused_until - timezone.now()).total_seconds() + random.uniform(0, 1))
        return
    if backend.circuit_open_until is not None and not health.allow_probe(backend):
        # Open (or its one trial job runs): never sent, so a job routed by policy may go elsewhere.
        reason = health.refusal_reason(backend, timezone.now())
        if not fallback.fall_back(generation, "circuit_open", reason):
            _release(generation, delay=health.retry_in(backend, timezone.now()))
        return
    if not _characters_ready(generation, backend):
        return
    # Take a concurrency slot: count and move to SUBMITTING in one write transaction, so two
    # workers cannot both take the last slot (IMMEDIATE on SQLite, a row lock on PostgreSQL).
    with transaction.atomic():
        claims.lock_backend(backend.pk)
        if claims.in_flight(backend.pk) >= backend.max_in_flight:
            won = False
        else:
            won = generation.transition(Status.QUEUED, Status.SUBMITTING, submitted_at=timezone.now())
    if not won:
        # The backend is full: the pump hands it out again only once a slot is free, so a short wait is safe.
        _release(generation, delay=settings.PUMP_TICK_SECONDS)
        return
    _send_create(generation, backend)


def _send_create(generation: Generation, backend: Backend) -> None:
    try:
        if generation.remix_of_id and generation.remix_of.remixable_on(backend):
            job = backend.client().remix(
                generation.remix_of.remote_id, generation.prompt_sent, generation.idempotency_key
            )
        else:
            kept = _kept_images(generation)
            job = backend.client().create(
                prompt=generation.prompt_sent,
                model=generation.model,
                seconds=generation.seconds,
                size=generation.size,
                characters=generation.characters_sent,
                idempotency_key=generation.idempotency_key,
                images=[] if images.START in kept else _reference_images(generation, backend),
                **{f"{role}_image": image for role, image in kept.items()},
            )
    except ProviderError as exc:
        _create_failed(generation, backend, exc)
        return
    health.record_success(backend)
    accept(generation, job)


def _characters_ready(generation: Generation, backend: Backend) -> bool:
    """Bind the job's characters on `backend` where they are not yet, and write the prompt for it once
    they all are. False: not yet (the job waits, or moved on, or ended: it has been dealt with)."""
    if generation.prompt_sent:
        return True
    characters = fallback.characters_of(generation)
    if generation.degraded:
        rendered = mentions.render_without(generation.prompt, characters)
    elif not characters:
        rendered = mentions.Rendered(generation.prompt, [])
    else:
        bindings = [c.binding_on(backend) or registry.bind(c, backend) for c in characters]
        failed = [
            f"@{c.handle}: {b.error or 'registration failed'}"
            for c, b in zip(characters, bindings, strict=True)
            if b.status == "failed"
        ]
        if failed:
            message = f"The characters could not be registered on {backend.name}: {'; '.join(failed)}"[:1000]
            if not fallback.fall_back(generation, "character_not_bound", message):
                generation.fail("character_not_bound", message)
            return False
        if any(b.status != "ready" for b in bindings):
            _release(generation, delay=settings.GENERATION_POLL_INTERVAL * 2)  # registration runs meanwhile
            return False
        characters = fallback.characters_of(generation)  # with the bindings just made
        rendered = mentions.render(generation.prompt, characters, backend)
        if generation.images.filter(role=images.START).exists():
            rendered = _stills_stay_home(rendered, backend)
    generation.prompt_sent = rendered.prompt
    generation.characters_sent = rendered.character_ids
    generation.characters_travel = rendered.travel
    Generation.objects.filter(pk=generation.pk).update(
        prompt_sent=rendered.prompt, characters_sent=rendered.character_ids, characters_travel=rendered.travel
    )
    return True


def _kept_images(generation: Generation) -> dict[str, ReferenceImage]:
    """The job's start and end images as they are sent, by role ("start", "end")."""
    kept = {}
    if not getattr(generation, "has_images", True):
        return kept  # advance read that it has none
    for stored in generation.images.all():
        with stored.image.open("rb") as handle:
            kept[stored.role] = ReferenceImage(f"{stored.role}.jpg", handle.read(), "image/jpeg")
    return kept


def _reference_images(generation: Generation, backend: Backend) -> list:
    """The mentioned characters' stills, for a protocol they travel to as reference images (in the
    order they were mentioned); nothing for one that knows them by id."""
    if backend.spec.travel != REFERENCE_IMAGES or not generation.characters_travel:
        return []
    # In the order of mention (the prompt says it; a jsonb column keeps no key order).
    return stills.reference_images(fallback.characters_of(generation), backend.spec.max_reference_images)


def _create_failed(generation: Generation, backend: Backend, exc: ProviderError) -> None:
    if health.refused_key(exc):
        _failed_here(generation, exc.code, health.disable(backend, exc))
        return
    if exc.transient and not exc.rate_limited:
        health.record_transient_failure(backend, exc.message)
    if exc.maybe_sent:
        log.warning("generation %s: create outcome unknown (%s)", generation.pk, exc.code)
        resolve_lost_submit(generation, cause=exc)
        return
    if exc.transient:
        if exc.rate_limited:
            # The provider's concurrency cap, not a failure: wait as told, do not count it.
            backend.pause(exc.retry_after or 5)
        else:
            Generation.objects.filter(pk=generation.pk).update(attempts=F("attempts") + 1)
            generation.refresh_from_db(fields=["attempts"])
            if generation.attempts >= settings.GENERATION_MAX_SUBMIT_ATTEMPTS:
                _failed_here(generation, exc.code, f"Gave up after {generation.attempts} attempts: {exc.message}")
                return
        if generation.transition(Status.SUBMITTING, Status.QUEUED):
            _release(generation, delay=_backoff(generation.attempts, exc.retry_after))
        return
    _failed_here(generation, exc.code, exc.message)


def _failed_here(generation: Generation, code: str, message: str) -> None:
    """A confirmed failure on the job's backend: move on to another backend if its policy allows, else end it."""
    if not fallback.fall_back(generation, code, message):
        generation.fail(code, message)


def resolve_lost_submit(generation: Generation, cause: ProviderError | None = None) -> None:
    """A create may have reached the provider but we never saw the answer. Never send it blindly."""
    backend = generation.backend
    if backend.honours_idempotency_keys:
        # The provider deduplicates by our key: sending again returns the job it already has.
        Generation.objects.filter(pk=generation.pk).update(attempts=F("attempts") + 1)
        generation.refresh_from_db(fields=["attempts"])
        if generation.attempts >= settings.GENERATION_MAX_SUBMIT_ATTEMPTS:
            why = f"{backend.name} never confirmed the job; gave up after {generation.attempts} tries."
            end_unknown(generation, why)
            return
        if generation.status == Status.SUBMITTING and cause is not None:
            generation.transition(Status.SUBMITTING, Status.QUEUED)
            _release(generation, delay=_backoff(generation.attempts, cause.retry_after))
            return
        _send_create(generation, backend)
        return
    try:
        job = _find_lost_job(generation, backend)
    except ProviderError as exc:
        if exc.transient and timezone.now() < generation.deadline:
            _release(generation, delay=_backoff(generation.poll_errors + 1, exc.retry_after))
            Generation.objects.filter(pk=generation.pk).update(poll_errors=F("poll_errors") + 1)
            return
        job = None
    if job is not None:
        accept(generation, job)
        return
    sent_at = generation.submitted_at or generation.created_at
    if (timezone.now() - sent_at).total_seconds() < settings.GENERATION_RECONCILE_SECONDS:
        # A provider may list a job only once it has finished accepting it: look again shortly.
        _release(generation, delay=settings.GENERATION_POLL_INTERVAL * 5)
        return
    if not backend.spec.lists_jobs:
        end_unknown(generation, f"{backend.name} did not confirm the job and offers no way to look it up.")
        return
    # Its list says it was never made: a confirmed failure, so a job routed by policy may move on.
    _failed_here(
        generation,
        "submit_unknown",
        f"{backend.name} did not confirm the job and it cannot be found there. It was not sent again, "
        "so nothing is charged twice; generate it again if you still want it.",
    )


def end_unknown(generation: Generation, why: str) -> bool:
    """End a job whose create may have been made (and billed) where we cannot see it: `unknown`, with its
    estimate held as possibly billed until an admin confirms or voids it (never pretended free, never
    charged twice). It was not sent again. Safe to call twice."""
    estimate = generation.cost_entries.filter(kind=CostKind.ESTIMATE).first()
    amount = estimate.amount if estimate is not None else 0
    message = (
        f"{why} It may have been made and billed there: ${amount:.2f} is shown as possibly billed until an "
        "admin confirms or voids it. It was not sent again; generate it again if you still want it."
    )
    with transaction.atomic():
        won = generation.fail("submit_unknown", message, status=Status.UNKNOWN)
        if won and estimate is not None:
            CostEntry.objects.record_once(
                kind=CostKind.POSSIBLE,
                amount=estimate.amount,
                backend=generation.backend,
                generation=generation,
                price=estimate.price,
                note="Possibly billed: the provider never confirmed the job",
            )
    return won


def _find_lost_job(generation: Generation, backend: Backend) -> RemoteJob | None:
    """The provider's job this lost create made, if its list shows exactly one that can be it: the same
    prompt, model, seconds and size, made while the create was in flight, and adopted by no other job
    (two takes of one scene share a prompt; they must never share a video)."""
    sent_at = (generation.submitted_at or generation.created_at).timestamp()
    lost = LostCreate(
        prompt=generation.prompt_sent,
        model=generation.model,
        seconds=generation.seconds,
        size=generation.size,
        created_after=sent_at - 60,
        created_before=sent_at + settings.PROVIDER_CONNECT_TIMEOUT + settings.PROVIDER_READ_TIMEOUT + 60,
    )
    candidates = {job.id: job for job in backend.client().find_recent(lost)}
    taken = set(
        Generation.objects.filter(backend=backend, remote_id__in=list(candidates))
        .exclude(pk=generation.pk)
        .values_list("remote_id", flat=True)
    )
    free = [job for job_id, job in candidates.items() if job_id not in taken]
    return free[0] if len(free) == 1 else None


def accept(generation: Generation, job: RemoteJob) -> None:
    """The provider took the job: remember its id, and charge now if it bills per request."""
    now = timezone.now()
    price = _price_of(generation, generation.seconds)
    first_poll = now + timedelta(seconds=_first_poll_in(job))
    # A state change is atomic by itself; only a charge with it needs a transaction around the two.
    with transaction.atomic() if price.billed_on_accept else contextlib.nullcontext():
        won = generation.transition(
            Status.SUBMITTING,
            Status.SUBMITTED,
            remote_id=job.id,
            submitted_at=now,
            lease_until=claims.lease_kept(first_poll, now),
            webhook=job.webhook,
            next_poll_at=first_poll,
        )
        if won and price.billed_on_accept:
            _charge(generation, price.amount, price.price, "Charged when the provider accepted the job")
    if not won:
        log.warning("generation %s: provider accepted %s after the job left SUBMITTING", generation.pk, job.id)


def _first_poll_in(job: RemoteJob) -> float:
    """Seconds until the first poll: at once for a job the create's answer says has ended already (a fast
    provider sends no hint then), else as the provider hinted, slowed where it will call back."""
    if job.status in (COMPLETED, FAILED):
        return 0
    return pacing.next_poll(job.poll_after, job.webhook)


def _price_of(generation: Generation, seconds: int) -> pricing.Quote:
    """Bill with the price row the estimate used (in force when the job was created), for the
    seconds actually delivered: a price edited or removed since cannot change or block the charge."""
    if used := _estimate_price(generation):
        price_id, unit, amount = used
        price = Price(pk=price_id, backend_id=generation.backend_id, unit=unit, amount=amount)
        return pricing.quote_with(price, seconds)
    return pricing.quote(generation.backend, generation.model, seconds, generation.size, at=generation.created_at)


def _estimate_price(generation: Generation) -> tuple | None:
    """(price id, unit, amount) of the price row the job's estimate on its backend used, if it used one.

    The row's three columns, not the entry and the price as models. A step's read of its job brings them
    (claims.read), and a next step that starts from the same account of the job (pump._hold) has them too.
    Kept with the backend they were read for: a job that falls back has its estimate moved, and is read again."""
    kept = getattr(generation, "estimate_price", None)  # (backend id, (price id, unit, amount) or None)
    if kept is not None and kept[0] == generation.backend_id:
        return kept[1]
    used = (
        CostEntry.objects.filter(generation_id=generation.pk, kind=CostKind.ESTIMATE, price__isnull=False)
        .order_by()
        .values_list("price_id", "price__unit", "price__amount")
        .first()
    )
    generation.estimate_price = (generation.backend_id, used)
    return used


def _charge(generation: Generation, amount, price, note: str) -> None:
    if (
        CostEntry.objects.record_once(
            kind=CostKind.CHARGE,
            amount=amount,
            backend=generation.backend,
            generation=generation,
            price=price,
            note=note,
        )
        is None
    ):
        log.info("generation %s: already charged", generation.pk)


def poll(generation: Generation) -> None:
    try:
        client = generation.backend.client()
        job = client.retrieve(generation.remote_id)
    except ProviderError as exc:
        if health.refused_key(exc):  # only here: a 403 on a download is an expired link, not a refused key
            generation.fail(exc.code, health.disable(generation.backend, exc))  # accepted there: it may be billed
            return
        _poll_failed(generation, exc)
        return
    health.record_success(generation.backend)
    if job.status == FAILED:
        _failed_here(
            generation,
            job.error_code or "generation_failed",
            job.error_message or f"{generation.backend.name} reported the job as failed.",
        )
        return
    if job.status == COMPLETED:
        complete(generation, job, client)
        return
    if job.status != "queued" and generation.status == Status.SUBMITTED:
        generation.transition(Status.SUBMITTED, Status.IN_PROGRESS)
    now = timezone.now()
    generation.next_poll_at = now + timedelta(seconds=pacing.next_poll(job.poll_after, generation.webhook))
    polled = {
        "progress": max(generation.progress, job.progress),
        "poll_errors": 0,
        "lease_until": claims.lease_kept(generation.next_poll_at, now),
    }
    Generation.objects.filter(pk=generation.pk, status__in=[Status.SUBMITTED, Status.IN_PROGRESS]).update(
        **polled, next_poll_at=generation.next_poll_at, updated_at=now
    )
    for name, value in polled.items():  # the job as this step left it, for a next step that starts from it
        setattr(generation, name, value)


def _poll_failed(generation: Generation, exc: ProviderError) -> None:
    if exc.transient and not exc.rate_limited:
        health.record_transient_failure(generation.backend, exc.message)
    if exc.rate_limited:
        generation.backend.pause(exc.retry_after or 5)
    if not exc.transient:
        generation.fail(exc.code, f"{generation.backend.name} no longer knows this job: {exc.message}")
        return
    errors = generation.poll_errors + 1
    if errors > MAX_POLL_ERRORS:
        generation.fail(exc.code, f"{generation.backend.name} kept failing: {exc.message}")
        return
    Generation.objects.filter(pk=generation.pk).update(poll_errors=errors)
    _release(generation, delay=_backoff(errors, exc.retry_after))


def _download_failed(generation: Generation, exc: ProviderError) -> None:
    """The provider said the video is ready, but fetching it failed. The status exchange worked, so the
    polls' error count starts again; downloads retry on their own short, capped schedule (a video that
    needed 8 s must not wait minutes behind earlier poll errors), until the link is refused or too many
    tries failed."""
    if exc.rate_limited:
        generation.backend.pause(exc.retry_after or 5)
    errors = generation.download_errors + 1
    if not exc.transient or errors > MAX_DOWNLOAD_ERRORS:
        generation.fail(
            exc.code, f"The finished video could not be fetched from {generation.backend.name}: {exc.message}"
        )
        return
    Generation.objects.filter(pk=generation.pk).update(download_errors=errors, poll_errors=0)
    delay = min(settings.GENERATION_POLL_INTERVAL * 2 ** min(errors, 6), DOWNLOAD_RETRY_MAX_SECONDS)
    _release(generation, delay=max(delay, exc.retry_after or 0))


def complete(generation: Generation, job: RemoteJob, client, *, old: list[str] = IN_FLIGHT) -> bool:
    """Store the video and thumbnail first (links expire), then mark completed and charge, atomically.

    True if this call completed it. From `timed_out` (check again) the job is charged unless a charge
    exists already (a per-request backend that keeps the money for timed-out jobs charged it on
    acceptance): one charge, whatever the price unit.
    """
    try:
        video = _fetch(client, job, "video")
        thumbnail = _fetch_optional(client, job, "thumbnail")
    except ProviderError as exc:
        if generation.status == Status.TIMED_OUT:
            raise  # check again says so; a timed-out job has no retry schedule to go back to
        _download_failed(generation, exc)
        return False
    with video:
        generation.video.save("video.mp4", File(video), save=False)
    if thumbnail is not None:
        with thumbnail:
            generation.thumbnail.save("thumbnail.webp", File(thumbnail), save=False)
    now = timezone.now()
    seconds = _delivered_seconds(job, generation)
    with transaction.atomic():
        won = generation.transition(
            old,
            Status.COMPLETED,
            progress=100,
            completed_at=now,
            video=generation.video.name,
            thumbnail=generation.thumbnail.name or "",
            lease_until=None,
            next_poll_at=None,
            remote_video_url=job.video_url[:2000],
            error_code="",
            error_message="",
        )
        if won:
            price = _price_of(generation, seconds)
            if not price.billed_on_accept:
                _charge(generation, price.amount, price.price, f"Charged for {seconds} s delivered")
            elif Status.TIMED_OUT in old:
                _charge(generation, price.amount, price.price, "Charged when the job turned out finished")
            if not claims.on_pump_thread():
                claims.wake_next_in_line(generation.backend_id, now)
            elif Status.TIMED_OUT not in old:
                # The slot it held goes straight to its backend's next queued job, which this thread sends next: one
                # transaction, no claim, lock or count between the two (claims.hand_slot_on says why none is needed).
                made_after = now - timedelta(seconds=generation.backend.timeout)
                successor, lease = claims.hand_slot_on(generation.backend, timezone.now(), made_after)
                if successor is not None:
                    generation.successor = (successor, lease)  # for the thread (pump.Hands)
    if won:
        log.info("generation %s completed", generation.pk)
    else:
        # Another worker stored and completed it first; drop our copies.
        generation.video.delete(save=False)
        if generation.thumbnail:
            generation.thumbnail.delete(save=False)
    return won


def _delivered_seconds(job: RemoteJob, generation: Generation) -> int:
    """The seconds the provider says it delivered ("8", "8.0"), else the seconds asked for. An answer that
    is not a sensible number never blocks a finished video: the job is billed for what was asked."""
    try:
        seconds = int(float(job.seconds))
    except (TypeError, ValueError, OverflowError):
        return generation.seconds
    return seconds if 0 < seconds <= 3600 else generation.seconds


def _fetch(client, job: RemoteJob, variant: str):
    handle = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    try:
        client.download(job, variant, handle)
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    return handle


def _fetch_optional(client, job: RemoteJob, variant: str):
    try:
        return _fetch(client, job, variant)
    except ProviderError as exc:
        if exc.transient:
            raise
        return None  # no thumbnail on offer: the card shows a placeholder


# --- Creator actions -----------------------------------------------------------------------


def cancel(generation: Generation) -> bool:
    """Cancel a job that has not reached the provider yet (nothing was charged, nothing to refund)."""
    return generation.transition(
        Status.QUEUED,
        Status.CANCELLED,
        error_code="cancelled",
        error_message="Cancelled before it was sent.",
        next_poll_at=None,
        lease_until=None,
    )


def check_again(generation: Generation) -> str:
    """Ask the provider once more about a job that timed out here; say what it answered.

    Finished there: the video is stored and the job completes (timed_out -> completed, compare-and-set)
    and is charged once. Still running: it stays timed out; the polling loop is not started again, so
    every job still ends within its backend's timeout (check again later). Failed there: it stays timed
    out with the provider's reason added. Only a job that was not refunded can be checked: the ledger
    holds one charge and one refund per job, so a refunded job found finished could not be charged again.
    """
    if generation.status != Status.TIMED_OUT:
        return "Only a timed-out video can be checked again."
    if not generation.remote_id:
        return f"{generation.backend.name} never accepted this job: there is nothing to check."
    if generation.refunded:
        return "Its charge was refunded when it timed out, so it cannot be checked again; try it again instead."
    # A short hold on the row, so a double-click asks (and downloads) once.
    now = timezone.now()
    hold = now + timedelta(seconds=settings.GENERATION_LEASE_SECONDS)
    held = Generation.objects.filter(pk=generation.pk, status=Status.TIMED_OUT).unleased(now).update(lease_until=hold)
    if not held:
        return "It is being checked already."
    try:
        return _check_again(generation)
    finally:
        Generation.objects.filter(pk=generation.pk, lease_until=hold).update(lease_until=None)


def _check_again(generation: Generation) -> str:
    backend = generation.backend
    try:
        client = backend.client()
        job = client.retrieve(generation.remote_id)
        if job.status == COMPLETED:
            if complete(generation, job, client, old=[Status.TIMED_OUT]):
                return f"{backend.name} had finished it: the video is here now."
            return "It has been completed already."
    except ProviderError as exc:
        return f"Could not check with {backend.name}: {exc.message}"
    if job.status == FAILED:
        reason = job.error_message or job.error_code or "it reported the job as failed"
        addition = f" {backend.name} says it failed: {reason}"
        Generation.objects.filter(pk=generation.pk, status=Status.TIMED_OUT).exclude(
            error_message__endswith=addition
        ).update(error_message=Concat(F("error_message"), Value(addition)), updated_at=timezone.now())
        return f"{backend.name} says it failed: {reason}"
    return f"{backend.name} says it is still running ({job.progress}%). It stays timed out; check again later."


def retry(generation: Generation) -> Started:
    """The same request again, as a new job (the old one and its costs stay as they were).

    Retrying one job twice (a double-click) returns the first retry.
    """
    return start(
        GenerationRequest(
            generation.owner,
            prompt=generation.prompt,
            model=generation.model,
            seconds=generation.seconds,
            size=generation.size,
            backend=generation.backend if generation.routing_policy == PINNED and generation.backend.enabled else None,
            scene=generation.scene,
            client_token=f"retry-of-{generation.uuid.hex}",
            policy=_policy_of(generation),
            **_images_of(generation),
        )
    )


def remix(generation: Generation, prompt: str) -> Started:
    """A variation of a finished video: the provider's remix where it has one, else a new job."""
    if generation.status != Status.COMPLETED:
        raise GenerationRefused("Only a completed video can be remixed.", "prompt", "not_completed")
    native = generation.remixes_natively
    # The same remix asked twice (a double-click) returns the first one.
    token = "remix-" + hashlib.sha256(f"{generation.uuid.hex}:{prompt.strip()}".encode()).hexdigest()[:40]
    return start(
        GenerationRequest(
            generation.owner,
            prompt=prompt,
            model=generation.model,
            seconds=generation.seconds,
            size=generation.size,
            backend=generation.backend if native else None,
            scene=generation.scene,
            remix_of=generation if native else None,
            client_token=token,
            policy=_policy_of(generation),
            # A native remix changes a finished video; a new job starts from the same images.
            **({} if native else _images_of(generation)),
        )
    )


def _images_of(generation: Generation) -> dict[str, images.ImageInput]:
    """A job's start and end images, to start another job from them: {"start_image": …, "end_image": …}."""
    return {f"{stored.role}_image": images.from_generation_image(stored) for stored in generation.images.all()}


def _policy_of(generation: Generation) -> str:
    """The policy a retry or remix of `generation` is routed by: the one it was routed by (blank: the defaults)."""
    return generation.routing_policy if generation.routing_policy != PINNED else ""


def delete(generation: Generation) -> str:
    """Remove a job's video here (and on the provider where the protocol allows) and hide it.

    The row stays, hidden: the ledger's entries keep pointing at what they paid for.
    """
    if generation.is_active and generation.status != Status.QUEUED:
        raise GenerationRefused(
            "Wait until the job ends (or cancel it while queued) before deleting it.", code="still_running"
        )
    note = ""
    if generation.remote_id and generation.backend.deletes_remotely:
        try:
            generation.backend.client().delete(generation.remote_id)
            note = f"Also deleted on {generation.backend.name}."
        except ProviderError as exc:
            note = f"Could not delete it on {generation.backend.name}: {exc.message}"
    if generation.status == Status.QUEUED:
        cancel(generation)
    for stored in (generation.video, generation.thumbnail, *(kept.image for kept in generation.images.all())):
        if stored:
            stored.delete(save=False)
    generation.images.all().delete()
    Generation.objects.filter(pk=generation.pk).update(deleted_at=timezone.now(), video="", thumbnail="")
    return note
