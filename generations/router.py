"""Which backend makes a video: the one the creator chose, or the cheapest that can.

A character id lives on one backend only, so a prompt that mentions characters can only go where
all of them are ready. Among the rest the cheapest quote wins; on a tie, the official tier.
"""

from __future__ import annotations

from dataclasses import dataclass

from characters.mentions import MentionError, check_ready
from generations.models import Backend, Tier
from generations.pricing import NoPrice, Quote, quote


class NoBackend(ValueError):
    """No enabled backend can make this video; the message says why for each."""


@dataclass(frozen=True)
class Route:
    backend: Backend
    quote: Quote
    reason: str


def assess(backend: Backend, characters, model: str, seconds: str, size: str) -> Route | str:
    """A Route if `backend` can make this video, else the reason it cannot."""
    if not backend.enabled:
        return f"{backend.name} is disabled."
    refusal = backend.allows(model, seconds, size)
    if refusal:
        return refusal
    try:
        check_ready(characters, backend)
        price = quote(backend, model, seconds, size)
    except (MentionError, NoPrice) as exc:
        return str(exc)
    return Route(backend, price, f"chosen: {backend.name}")


def candidates(characters, model: str, seconds: str, size: str) -> list[Route | str]:
    backends = Backend.objects.enabled().prefetch_related("prices")
    return [assess(b, characters, model, seconds, size) for b in backends]


def choose(characters, model: str, seconds: str, size: str, backend: Backend | None = None) -> Route:
    """Route one video. Raises NoBackend with a reason a creator can act on."""
    if backend is not None:
        result = assess(backend, characters, model, seconds, size)
        if isinstance(result, str):
            raise NoBackend(result)
        return Route(result.backend, result.quote, f"chosen by you: {backend.name}")
    results = candidates(characters, model, seconds, size)
    routes = [r for r in results if isinstance(r, Route)]
    if not routes:
        reasons = " ".join(r for r in results if isinstance(r, str)) or "No backend is enabled."
        raise NoBackend(f"No backend can make this video. {reasons}")
    routes.sort(key=lambda r: (r.quote.amount, r.backend.tier != Tier.OFFICIAL, r.backend.name))
    best = routes[0]
    why = "cheapest" if len(routes) > 1 else "the only one able"
    if characters:
        why += " with " + ", ".join(f"@{c.handle}" for c in characters) + " ready"
    return Route(best.backend, best.quote, f"automatic: {best.backend.name}, {why} ({best.quote.describe})")
