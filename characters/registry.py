"""Registering a character on a backend: from its stored clip, or extracted from a finished task.

The stored source clip is the only way to keep a character consistent across backends, so a
clip given by URL is downloaded and kept here first.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import requests
from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from characters.models import BindingStatus, Character, CharacterBinding
from generations import pricing, queue
from generations.backends import ProviderError
from generations.models import CostEntry, CostKind
from sora_studio import netguard

log = logging.getLogger(__name__)

CLIP_LINK_SALT = "characters.clip"
CLIP_LINK_MAX_AGE = 60 * 60


class ClipError(ValueError):
    """The clip could not be fetched or is not acceptable."""


def bind(character: Character, backend, *, extract_from_task: str = "") -> CharacterBinding:
    """Ask `backend` to learn `character` (again, if an earlier try failed). Runs in a worker."""
    binding, created = CharacterBinding.objects.get_or_create(
        character=character, backend=backend, defaults={"extract_from_task": extract_from_task}
    )
    if not created:
        if binding.status != BindingStatus.FAILED:
            return binding  # ready or on its way: never register twice
        binding.transition(BindingStatus.FAILED, BindingStatus.PROCESSING, error="",
                           extract_from_task=extract_from_task or binding.extract_from_task)
    queue.register_binding_on_commit(binding.pk)
    return binding


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
    limit = settings.CHARACTER_CLIP_MAX_BYTES
    try:
        netguard.check(character.source_url)
    except netguard.UnsafeURL as exc:
        raise ClipError(str(exc)) from None
    try:
        # No redirects: a public link must not bounce the server into its private network.
        with requests.get(character.source_url, stream=True, timeout=(5, 30), allow_redirects=False) as response:
            if response.is_redirect:
                raise ClipError("The clip link redirects; give the final link instead.")
            response.raise_for_status()
            chunks, size = [], 0
            for chunk in response.iter_content(256 * 1024):
                size += len(chunk)
                if size > limit:
                    raise ClipError(f"The clip is larger than {limit // (1024 * 1024)} MB.")
                chunks.append(chunk)
    except requests.RequestException as exc:
        raise ClipError(f"Could not download the clip: {type(exc).__name__}.") from None
    if size == 0:
        raise ClipError("The clip at that URL is empty.")
    character.source_clip.save("clip.mp4", ContentFile(b"".join(chunks)), save=False)
    Character.objects.filter(pk=character.pk).update(source_clip=character.source_clip.name)
    from characters.avatars import ensure_avatar

    ensure_avatar(character)  # now that there is a clip, every page can show its face


def register(binding_id: int) -> None:
    """Worker step: create the character on the backend and record its id. Safe to run twice."""
    binding = CharacterBinding.objects.select_related("character", "backend").filter(pk=binding_id).first()
    if binding is None or binding.status != BindingStatus.PROCESSING:
        return
    # A short lease so two workers do not both register it; a dead worker's lease runs out.
    now = timezone.now()
    if not CharacterBinding.objects.filter(pk=binding.pk, status=BindingStatus.PROCESSING, updated_at=binding.updated_at).update(updated_at=now):
        return
    character, backend = binding.character, binding.backend
    try:
        client = backend.client()
        if binding.extract_from_task:
            remote_id = client.extract_character(binding.extract_from_task, character.name)
        else:
            fetch_clip(character)
            if not character.source_clip:
                raise ClipError("This character has no source clip.")
            with character.source_clip.open("rb") as clip:
                remote_id = client.create_character(
                    name=character.name, description=character.description, clip=clip,
                    clip_url=clip_link(character),
                )
    except (ProviderError, ClipError) as exc:
        message = getattr(exc, "message", str(exc))
        binding.transition(BindingStatus.PROCESSING, BindingStatus.FAILED, error=message)
        return
    with transaction.atomic():
        if binding.transition(BindingStatus.PROCESSING, BindingStatus.READY, remote_id=remote_id, error=""):
            fee, price = pricing.character_fee(backend)
            if fee > 0:
                try:
                    with transaction.atomic():
                        CostEntry.objects.record(kind=CostKind.CHARGE, amount=fee, backend=backend,
                                                 owner=character.owner, binding=binding, price=price,
                                                 note=f"Character @{character.handle} created")
                except IntegrityError:
                    pass


def stale_bindings(older_than: timedelta = timedelta(minutes=5)):
    """Registrations whose worker died: the pump hands them out again."""
    return CharacterBinding.objects.filter(status=BindingStatus.PROCESSING, updated_at__lt=timezone.now() - older_than)
