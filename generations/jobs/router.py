"""Which backend makes a video: the one the creator chose, or the cheapest that can.

A character id lives on one backend only, so a prompt that mentions characters can only go where
all of them are ready. Among the rest the cheapest quote wins; on a tie, the official tier.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone

from characters.mentions import MentionError, check_ready
from generations.billing.pricing import NoPrice, Quote, quote
from generations.providers import health
from generations.providers.models import Backend, Refusal, Tier


class NoBackend(ValueError):
    """No enabled backend can make this video; the message says why for each."""


@dataclass(frozen=True)
class Route:
    backend: Backend
    quote: Quote
    reason: str


def assess(backend: Backend, characters, model: str, seconds: str, size: str) -> Route | Refusal:
    """A Route if `backend` can make this video, else the reason it cannot."""
    if not backend.enabled:
        return Refusal(backend, f"{backend.name} is disabled.")
    if health.is_open(backend, now := timezone.now()):
        # After the cooldown (and no trial job yet) it is closed enough to take the one trial job.
        return Refusal(backend, health.refusal_reason(backend, now))
    if refusal := backend.refusal(model, seconds, size):
        return refusal
    try:
        check_ready(characters, backend)
        price = quote(backend, model, seconds, size)
    except (MentionError, NoPrice) as exc:
        return Refusal(backend, str(exc))
    return Route(backend, price, f"chosen: {backend.name}")


def candidates(characters, model: str, seconds: str, size: str) -> list[Route | Refusal]:
    backends = Backend.objects.enabled().prefetch_related("prices")
    return [assess(b, characters, model, seconds, size) for b in backends]


def choose(characters, model: str, seconds: str, size: str, backend: Backend | None = None) -> Route:
    """Route one video. Raises NoBackend with a reason a creator can act on."""
    if backend is not None:
        result = assess(backend, characters, model, seconds, size)
        if isinstance(result, Refusal):
            raise NoBackend(str(result))
        return Route(result.backend, result.quote, f"chosen by you: {backend.name}")
    return best(candidates(characters, model, seconds, size), characters)


def best(results: list[Route | Refusal], characters) -> Route:
    """The cheapest of the candidates that can (official on a tie). Raises NoBackend saying why none can."""
    routes = [r for r in results if isinstance(r, Route)]
    if not routes:
        reasons = " ".join(str(r) for r in results if isinstance(r, Refusal)) or "No backend is enabled."
        raise NoBackend(f"No backend can make this video. {reasons}")
    routes.sort(key=lambda r: (r.quote.amount, r.backend.tier != Tier.OFFICIAL, r.backend.name))
    chosen = routes[0]
    why = "cheapest" if len(routes) > 1 else "the only one able"
    if characters:
        why += " with " + ", ".join(f"@{c.handle}" for c in characters) + " ready"
    return Route(chosen.backend, chosen.quote, f"automatic: {chosen.backend.name}, {why} ({chosen.quote.describe})")
