"""Words in a prompt that make the simulator misbehave on purpose, so every failure path of a
client can be exercised deterministically over real HTTP."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TRIGGER = re.compile(r"#(fail|moderation|slow|garbage|flaky)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Triggers:
    fail: bool = False  # the job ends `failed` halfway through rendering
    moderation: bool = False  # create is refused with 400 moderation_blocked
    slow: bool = False  # the job takes 30x longer
    garbage: bool = False  # GET of the job answers 200 with an HTML body
    flaky: bool = False  # the first GET of the job answers 503

    @property
    def as_text(self) -> str:
        return " ".join(name for name, on in vars(self).items() if on)


def parse(prompt: str) -> Triggers:
    found = {match.lower() for match in _TRIGGER.findall(prompt)}
    return Triggers(**{name: True for name in found})


def from_text(text: str) -> Triggers:
    """Rebuild what `Triggers.as_text` stored on a job."""
    return Triggers(**{name: True for name in text.split()})
