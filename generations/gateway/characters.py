"""Characters through the API: `POST /v1/videos/characters` (a clip and a name) makes a library character.

The character library's own rules do the work: its form checks the clip (type, size) and the handle, and
the character is registered on every backend that holds characters, as the "New character" page does
(registration runs in a worker; reference-image backends are ready at once). The API knows it by a
`char_<hex>` id; prompts use its `@handle`, which the answer carries.
"""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction

from characters import avatars, registry, stills
from characters.forms import CharacterForm
from characters.models import Character
from generations.gateway.models import ApiCharacter, ApiToken
from generations.gateway.params import CharacterAsk
from generations.gateway.wire import CHARACTER_PREFIX, invalid, not_found, parse_id
from generations.providers.models import Backend

# The form's fields, as the API calls them.
PARAMS = {"clip": "video", "name": "name", "handle": "handle"}


def free_handle(owner, name: str) -> str:
    """A handle made from the name ("Mossy the Robot" → mossy_the_robot), numbered if the creator has it."""
    base = re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")[:30]
    base = base if len(base) >= 2 else "character"
    taken = set(Character.objects.owned_by(owner).filter(handle__startswith=base).values_list("handle", flat=True))
    handle, number = base, 1
    while handle in taken:
        number += 1
        suffix = f"_{number}"
        handle = base[: 30 - len(suffix)] + suffix
    return handle


def create(token: ApiToken, ask: CharacterAsk) -> ApiCharacter:
    owner = token.user
    backends = list(Backend.objects.for_characters())
    form = CharacterForm(
        data={
            "name": ask.name,
            "handle": ask.handle or free_handle(owner, ask.name),
            "description": "",
            "video_url": "",
            "backends": [b.pk for b in backends],
        },
        files={"clip": ask.video},
        instance=Character(owner=owner),
        owner=owner,
    )
    if not form.is_valid():
        name, errors = next(iter(form.errors.items()))
        raise invalid(" ".join(errors), PARAMS.get(name), "invalid_value")
    character = form.instance
    character.source_clip = form.cleaned_data["clip"]
    try:
        with transaction.atomic():
            character.save()
            for backend in form.cleaned_data["backends"]:
                registry.bind(character, backend)
            made = ApiCharacter.objects.create(character=character, token=token)
    except IntegrityError:  # the same handle, taken a moment ago by another request
        raise invalid(f"You already have a character called @{character.handle}.", "handle") from None
    avatars.ensure_avatar(character)
    stills.take_from_clip(character)
    return made


def find(user, given: str) -> ApiCharacter:
    uid = parse_id(given, CHARACTER_PREFIX)
    made = (
        ApiCharacter.objects.select_related("character").filter(public_id=uid, character__owner=user).first()
        if uid
        else None
    )
    if made is None:
        raise not_found("character", given, "character_id")
    return made
