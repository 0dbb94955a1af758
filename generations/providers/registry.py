"""Every protocol the studio speaks: one package each, one line here.

A protocol package holds its client and its `SPEC` (generations.providers.base.ProtocolSpec); nothing
outside the package names the protocol. To add one, write the package and add its line below.
"""

from __future__ import annotations

from functools import cache
from importlib import import_module

from django.utils.module_loading import import_string

from generations.providers.base import ProtocolSpec

PROTOCOLS = {
    "openai_videos": "generations.providers.openai_videos",
    "task_api": "generations.providers.task_api",
    "gemini_veo": "generations.providers.gemini_veo",
    "runway": "generations.providers.runway",
    "fal_queue": "generations.providers.fal_queue",
    "replicate": "generations.providers.replicate",
}


class UnknownProtocol(LookupError):
    pass


@cache
def spec(name: str) -> ProtocolSpec:
    """The spec of protocol `name`; UnknownProtocol for a name no package provides."""
    try:
        return import_module(PROTOCOLS[name]).SPEC
    except KeyError:
        raise UnknownProtocol(f"No protocol called {name!r}; known: {', '.join(PROTOCOLS)}.") from None


def specs() -> list[ProtocolSpec]:
    return [spec(name) for name in PROTOCOLS]


def choices() -> list[tuple[str, str]]:
    """For the Backend.protocol field (a callable, so a new protocol needs no migration)."""
    return [(s.name, s.label) for s in specs()]


def client_for(backend):
    """The client that speaks `backend`'s protocol, bound to its URL and key."""
    return import_string(spec(backend.protocol).client)(backend)
