"""`@handle` mentions: find them in a prompt, resolve them, and write them as each protocol wants.

task_api backends take `@<remote character id>` inside the prompt. openai_videos backends take
`characters: [{"id": ...}]` (two at most) and expect the character's name in the prompt text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from characters.models import HANDLE_PATTERN, Character

MENTION_RE = re.compile(rf"(?<![\w@])@({HANDLE_PATTERN})(?![\w])", re.IGNORECASE)
OPENAI_MAX_CHARACTERS = 2


def find_handles(prompt: str) -> list[str]:
    """Handles mentioned, lower-cased, in order of first mention."""
    return list(dict.fromkeys(match.lower() for match in MENTION_RE.findall(prompt)))


class MentionError(ValueError):
    """A mention that cannot be honoured; the message names the handle."""


@dataclass
class Rendered:
    prompt: str
    character_ids: list[str]  # remote ids to send as `characters` (openai_videos only)


def resolve(owner, prompt: str) -> list[Character]:
    """The owner's characters mentioned in `prompt`, or MentionError naming the unknown handles."""
    handles = find_handles(prompt)
    if not handles:
        return []
    found = {c.handle: c for c in Character.objects.owned_by(owner).filter(handle__in=handles).prefetch_related("bindings")}
    missing = [h for h in handles if h not in found]
    if missing:
        names = ", ".join(f"@{h}" for h in missing)
        raise MentionError(f"No character called {names} in your library.")
    return [found[h] for h in handles]


def check_ready(characters: list[Character], backend) -> None:
    """MentionError unless every character is ready on `backend` (a character id lives on one backend)."""
    not_ready = []
    for character in characters:
        binding = character.binding_on(backend)
        if binding is None:
            not_ready.append(f"@{character.handle} is not registered on {backend.name}")
        elif binding.status != "ready":
            not_ready.append(f"@{character.handle} is {binding.get_status_display().lower()} on {backend.name}")
    if not_ready:
        raise MentionError("; ".join(not_ready) + ".")
    if backend.protocol == "openai_videos" and len(characters) > OPENAI_MAX_CHARACTERS:
        raise MentionError(f"{backend.name} takes at most {OPENAI_MAX_CHARACTERS} characters per video.")


def render(prompt: str, characters: list[Character], backend) -> Rendered:
    """The prompt as this backend must receive it."""
    by_handle = {c.handle: c for c in characters}
    if not by_handle:
        return Rendered(prompt, [])

    if backend.protocol == "task_api":
        def replace(match):
            return f"@{by_handle[match.group(1).lower()].binding_on(backend).remote_id}"
        return Rendered(MENTION_RE.sub(replace, prompt), [])

    def replace(match):
        return by_handle[match.group(1).lower()].name
    ids = [c.binding_on(backend).remote_id for c in characters]
    return Rendered(MENTION_RE.sub(replace, prompt), ids)
