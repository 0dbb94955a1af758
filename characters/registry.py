"""Registering a character on a backend: from its stored clip, or extracted from a finished task.

The stored source clip is the only way to keep a character consistent across backends, so a
clip given by URL is downloaded and kept here first.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from characters import clips, stills
from characters.models import BindingStatus, Character, CharacterBinding
from generations.billing import pricing
from generations.billing.models import CostEntry, CostKind
from generations.providers import health
from generations.providers.base import ProviderError
from sora_studio import netguard, queue

log = logging.getLogger(__name__)

CLIP_LINK_SALT = "characters.clip"
MAX_ATTEMPTS = 5
LEASE = timedelta(minutes=2)  # how long one try may take before another worker may take over
FIRST_TRY_GRACE = timedelta(seconds=30)  # the task enqueued on commit normally runs well before
CLIP_LINK_MAX_AGE = 60 * 60


class ClipError(ValueError):
    """The clip could not be fetched or is not acceptable."""


def bind(character: Character, backend, *, extract_from_task: str = "") -> CharacterBinding:
    """Ask `backend` to learn `character` (again, if an earlier try failed). Runs in a worker."""
    first_try = timezone.now() + FIRST_TRY_GRACE
    binding, created = CharacterBinding.objects.get_or_create(
        character=character,
        backend=backend,
        defaults={"extract_from_task": extract_from_task, "next_try_at": first_try},
    )
    if not created:
        if binding.status != BindingStatus.FAILED:
            return binding  # ready or on its way: never register twice
        binding.transition(
            BindingStatus.FAILED,
            BindingStatus.PROCESSING,
            error="",
            attempts=0,
            next_try_at=first_try,
            extract_from_task=extract_from_task or binding.extract_from_task,
        )
    if travels_by_images(backend) and stills.take_from_clip(character):
        # Nothing to register: the stills go along with every video. Ready at once.
        binding.transition(BindingStatus.PROCESSING, BindingStatus.READY, remote_id="", error="", next_try_at=None)
        return binding
    queue.register_binding_on_commit(binding.pk)
    return binding


def unreachable_upload_note(backends) -> str:
    """Why an uploaded clip will not reach some of these backends, or "": they fetch clips from a link to
    this studio, and SITE_URL is a loopback address no provider outside this machine can reach."""
    names = [b.name for b in backends if b.spec.clip_by_url]
    host = urlsplit(settings.SITE_URL).hostname or ""
    if not names or not (host == "localhost" or host.startswith("127.") or host == "::1"):
        return ""
    return (
        f"{', '.join(names)} fetch{'es' if len(names) == 1 else ''} an uploaded clip from this studio's address "
        f"({settings.SITE_URL}), which only this machine can reach: give those backends a public link to the "
        "clip instead, or set SITE_URL to a public address."
    )


def travels_by_images(backend) -> bool:
    return backend.takes_reference_images


def how_it_travels(character: Character, backend) -> str:
    """What a creator reads per backend: the native id it has there, or the stills that go along."""
    if travels_by_images(backend):
        count = min(character.stills.count(), backend.spec.max_reference_images)
        return f"as {count} reference image{'s' if count != 1 else ''}, with its name in the prompt"
    binding = character.binding_on(backend)
    return f"as its id {binding.remote_id}" if binding and binding.remote_id else "as its id, once registered"


def clip_link(character: Character) -> str:
    """A signed, expiring, login-free link to the stored clip, for backends that take a URL."""
    token = signing.dumps(character.pk, salt=CLIP_LINK_SALT)
    return settings.SITE_URL + reverse("characters:clip", args=[token])


def character_for_clip_token(token: str) -> Character | None:
    try:
        pk = signing.loads(token, salt=CLIP_LINK_SALT, max_age=CLIP_LINK_MAX_AGE)
    except signing.BadSignature:
        return None
    return Character.objects.filter(pk=pk).exclude(source_clip="").first()


def fetch_clip(character: Character) -> None:
    """Download a clip given by URL into storage, once."""
    if character.source_clip or not character.source_url:
        return
    try:
        # Parsed once, resolved once, fetched from the checked address; redirects refused (see netguard).
        clip = netguard.fetch(character.source_url, settings.CHARACTER_CLIP_MAX_BYTES, timeout=(5, 30))
    except netguard.FetchError as exc:
        raise ClipError(str(exc)) from None
    if not clip:
        raise ClipError("The clip at that URL is empty.")
    character.source_clip.save("clip.mp4", ContentFile(clip), save=False)
    Character.objects.filter(pk=character.pk).update(source_clip=character.source_clip.name)
    from characters.avatars import ensure_avatar

    ensure_avatar(character)  # now that there is a clip, every page can show its face


def register(binding_id: int) -> None:
    """Worker step: create the character on the backend and record its id. Safe to run twice."""
    binding = CharacterBinding.objects.select_related("character", "backend").filter(pk=binding_id).first()
    if binding is None or binding.status != BindingStatus.PROCESSING:
        return
    # Take it by compare-and-set, so two workers never register it at once; a dead worker's lease
    # runs out and the pump hands it out again.
    now = timezone.now()
    if not CharacterBinding.objects.filter(
        pk=binding.pk, status=BindingStatus.PROCESSING, next_try_at=binding.next_try_at
    ).update(next_try_at=now + LEASE, attempts=F("attempts") + 1, updated_at=now):
        return
    binding.refresh_from_db(fields=["attempts", "next_try_at"])
    character, backend = binding.character, binding.backend
    try:
        client = backend.client()
        if binding.extract_from_task:
            remote_id = client.extract_character(binding.extract_from_task, character.name)
        elif travels_by_images(backend):
            fetch_clip(character)
            if not stills.take_from_clip(character):
                raise ClipError("No stills could be taken from this character's clip; upload stills or another clip.")
            remote_id = ""
        else:
            fetch_clip(character)
            if not character.source_clip:
                raise ClipError("This character has no source clip.")
            with clips.for_registration(character.source_clip, backend.spec.clip_seconds) as clip:
                remote_id = client.create_character(
                    name=character.name,
                    description=character.description,
                    clip=clip,
                    # A clip given by a public link is passed on as that link: a provider cannot
                    # reach this studio's own address from outside. Uploads go as a signed link.
                    clip_url=character.source_url or clip_link(character),
                )
    except (ProviderError, ClipError) as exc:
        message = getattr(exc, "message", str(exc))
        if isinstance(exc, ProviderError) and health.refused_key(exc):
            message = health.disable(backend, exc)  # a refused key is the backend's, not this character's
        if getattr(exc, "transient", False) and binding.attempts < MAX_ATTEMPTS:
            # Down for a moment, or busy (429): try again soon, as the provider asked if it did.
            delay = max(2**binding.attempts, getattr(exc, "retry_after", None) or 0)
            CharacterBinding.objects.filter(pk=binding.pk, status=BindingStatus.PROCESSING).update(
                next_try_at=timezone.now() + timedelta(seconds=delay), error=f"Retrying: {message}"
            )
            return
        binding.transition(BindingStatus.PROCESSING, BindingStatus.FAILED, error=message, next_try_at=None)
        return
    with transaction.atomic():
        if binding.transition(
            BindingStatus.PROCESSING, BindingStatus.READY, remote_id=remote_id, error="", next_try_at=None
        ):
            fee, price = pricing.character_fee(backend)
            if fee > 0:
                CostEntry.objects.record_once(
                    kind=CostKind.CHARGE,
                    amount=fee,
                    backend=backend,
                    owner=character.owner,
                    binding=binding,
                    price=price,
                    note=f"Character @{character.handle} created",
                )


def due_bindings(now):
    """Registrations to (re)try now: a transient error's wait is over, or a dead worker's lease ran out."""
    # Longest waiting first, and no joins: the pump asks twice a second (the model's ordering joins two tables).
    return CharacterBinding.objects.filter(status=BindingStatus.PROCESSING, next_try_at__lte=now).order_by(
        "next_try_at"
    )
