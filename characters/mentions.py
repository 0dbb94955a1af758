"""`@handle` mentions: find them in a prompt, resolve them, and write them as each protocol wants.

How a character travels is the protocol's to say (its spec's `write_mention`, `sends_character_ids`
and `max_characters`): as its remote id inside the prompt, or as its name in the prompt with the
remote ids sent beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from characters import stills
from characters.models import HANDLE_PATTERN, Character
from generations.providers.base import REFERENCE_IMAGES, Mention

MENTION_RE = re.compile(rf"(?<![\w@])@({HANDLE_PATTERN})(?![\w])", re.IGNORECASE)


def find_handles(prompt: str) -> list[str]:
    """Handles mentioned, lower-cased, in order of first mention."""
    return list(dict.fromkeys(match.lower() for match in MENTION_RE.findall(prompt)))


class MentionError(ValueError):
    """A mention that cannot be honoured; the message names the handle."""


@dataclass
class Rendered:
    prompt: str
    character_ids: list[str]  # remote ids to send beside the prompt, where the protocol takes them
    travel: dict[str, str] = field(default_factory=dict)  # handle -> how it was sent, for the creator


def resolve(owner, prompt: str) -> list[Character]:
    """The owner's characters mentioned in `prompt`, or MentionError naming the unknown handles."""
    handles = find_handles(prompt)
    if not handles:
        return []
    found = {
        c.handle: c
        for c in Character.objects.owned_by(owner).filter(handle__in=handles).prefetch_related("bindings", "stills")
    }
    missing = [h for h in handles if h not in found]
    if missing:
        names = ", ".join(f"@{h}" for h in missing)
        raise MentionError(f"No character called {names} in your library.")
    return [found[h] for h in handles]


def check_ready(characters: list[Character], backend, *, or_bindable: bool = False) -> list[Character]:
    """MentionError unless every character is ready on `backend` (a character id lives on one backend),
    or, with `or_bindable`, can be made ready there before the video is sent: registered from its clip,
    or given stills to travel as. Returns the characters that must be bound on `backend` first."""
    not_ready, to_bind = [], []
    for character in characters:
        binding = character.binding_on(backend)
        if binding is not None and binding.status == "ready":
            continue
        if or_bindable and (binding.status == "processing" if binding else can_bind(character, backend)):
            to_bind.append(character)
        elif binding is None:
            why = _cannot_bind(character, backend)
            not_ready.append(f"@{character.handle} is not registered on {backend.name}{why}")
        elif binding.status == "failed":
            not_ready.append(f"@{character.handle} could not be registered on {backend.name}")
        else:
            not_ready.append(f"@{character.handle} is {binding.get_status_display().lower()} on {backend.name}")
    if not_ready:
        raise MentionError("; ".join(not_ready) + ".")
    limit = backend.spec.max_characters
    if limit is not None and len(characters) > limit:
        raise MentionError(f"{backend.name} takes at most {limit} characters per video.")
    return to_bind


def can_bind(character: Character, backend) -> bool:
    """The character can be made ready on `backend`: its stills (or a clip to take them from) travel to a
    reference-image protocol; its clip registers it on a protocol that keeps characters by id."""
    has_clip = bool(character.source_clip or character.source_url)
    if backend.spec.travel == REFERENCE_IMAGES:
        return has_clip or bool(character.stills.all())
    return has_clip and backend.spec.characters


def _cannot_bind(character: Character, backend) -> str:
    if can_bind(character, backend):
        return ""
    return " and has no clip to register it from" if backend.spec.travel != REFERENCE_IMAGES else " and has no stills"


def render_without(prompt: str, characters: list[Character]) -> Rendered:
    """The prompt with each mention written as the character's plain name, and nothing else sent: a video
    degraded to go without its characters (no backend that can carry them is up)."""
    names = {c.handle: c.name for c in characters}
    text = MENTION_RE.sub(lambda match: names.get(match.group(1).lower(), match.group(0)), prompt)
    return Rendered(text, [], dict.fromkeys(names, "not sent: only its name, in the prompt (degraded)"))


def render(prompt: str, characters: list[Character], backend) -> Rendered:
    """The prompt as this backend must receive it."""
    if not characters:
        return Rendered(prompt, [])
    spec = backend.spec
    known = {c.handle: Mention(name=c.name, remote_id=c.binding_on(backend).remote_id) for c in characters}
    text = MENTION_RE.sub(lambda match: spec.write_mention(known[match.group(1).lower()]), prompt)
    ids = [known[c.handle].remote_id for c in characters] if spec.sends_character_ids else []
    if spec.travel == REFERENCE_IMAGES:
        counts = stills.shares(characters, spec.max_reference_images)
        travel = {h: f"{n} reference image{'' if n == 1 else 's'} and its name" for h, n in counts.items()}
    elif spec.sends_character_ids:
        travel = {h: f"its id {m.remote_id} and its name" for h, m in known.items()}
    else:
        travel = {h: f"its id {m.remote_id} in the prompt" for h, m in known.items()}
    return Rendered(text, ids, {c.handle: travel[c.handle] for c in characters})
