"""Which backend makes a video: the one the creator pinned, or the one their routing policy prefers.

A video that starts from an image (or ends on one) goes only where the backend's protocol, and the model
there, take such images; every other backend is passed over with the reason.

A character id lives on one backend only, so a prompt that mentions characters can only go where
all of them are ready, or can be made ready first (registered from the character's clip, or given
stills to travel as reference images): the job binds them there before it is sent. Among those the
policy decides:
- cost: the cheapest quote; on a tie, the official tier;
- stability: the official tier first, then the cheapest;
- character: where every character is natively bound, else where they travel by reference images;
  the cheapest of those.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from characters.mentions import MentionError, check_ready
from generations.billing.pricing import NoPrice, Quote, quote
from generations.jobs.models import PINNED, Policy
from generations.providers import health
from generations.providers.models import Backend, Refusal, Tier


class NoBackend(ValueError):
    """No enabled backend can make this video; the message says why for each."""


@dataclass(frozen=True)
class Route:
    backend: Backend
    quote: Quote
    reason: str
    policy: str = PINNED
    # Every backend weighed, as a generation stores it: its quote, or why it could not.
    candidates: list[dict] = field(default_factory=list)
    # Characters to bind on `backend` before the video is sent (registered, or given stills).
    to_bind: tuple = ()
    # Sent without its characters: no backend up can carry them and its series says to go without.
    degraded: bool = False


def assess(
    backend: Backend,
    characters,
    model: str,
    seconds: str,
    size: str,
    *,
    despite_outage: bool = False,
    images: tuple[str, ...] = (),
) -> Route | Refusal:
    """A Route if `backend` can make this video, else the reason it cannot. `images`: the start and end
    images asked for ("start", "end"), which the backend must be able to take."""
    if not backend.enabled:
        return Refusal(backend, f"{backend.name} is disabled.")
    if not despite_outage and health.is_open(backend, now := timezone.now()):
        # After the cooldown (and no trial job yet) it is closed enough to take the one trial job.
        return Refusal(backend, health.refusal_reason(backend, now))
    if refusal := backend.refusal(model, seconds, size):
        return refusal
    with_stills = bool(characters) and backend.takes_reference_images  # a still can be the first frame there
    if refusal := backend.image_refusal(model, images, with_characters=with_stills):
        return refusal
    try:
        to_bind = check_ready(characters, backend, or_bindable=True)
        price = quote(backend, model, seconds, size)
    except (MentionError, NoPrice) as exc:
        return Refusal(backend, str(exc))
    return Route(backend, price, f"chosen: {backend.name}", to_bind=tuple(to_bind))


def binding_note(route: Route) -> str:
    """What will happen before the video is sent, in words: '' if every character is ready there."""
    if not route.to_bind:
        return ""
    handles = ", ".join(f"@{c.handle}" for c in route.to_bind)
    how = "given its stills" if route.backend.takes_reference_images else "registered"
    return f" ({handles} {how} on {route.backend.name} first)"


def candidates(
    characters,
    model: str,
    seconds: str,
    size: str,
    *,
    exclude=(),
    despite_outage: bool = False,
    images: tuple[str, ...] = (),
) -> list[Route | Refusal]:
    """Every enabled backend (but those in `exclude`, pks), as a Route or the reason it cannot;
    `despite_outage` counts a backend whose circuit is open as able (for work that waits for it);
    `images` are the start and end images the video asks for ("start", "end")."""
    backends = Backend.objects.enabled().exclude(pk__in=list(exclude)).with_prices()
    return [assess(b, characters, model, seconds, size, despite_outage=despite_outage, images=images) for b in backends]


def choose(
    characters,
    model: str,
    seconds: str,
    size: str,
    backend: Backend | None = None,
    policy: str = Policy.COST,
    images: tuple[str, ...] = (),
) -> Route:
    """Route one video: to `backend` if pinned, else by `policy`. NoBackend says why, in words a creator can act on."""
    if backend is not None:
        result = assess(backend, characters, model, seconds, size, images=images)
        if isinstance(result, Refusal):
            raise NoBackend(str(result))
        reason = f"{PINNED}: {backend.name}, chosen by you, at {result.quote.describe}{binding_note(result)}."
        return Route(result.backend, result.quote, reason, PINNED, _record([result]), result.to_bind)
    return best(candidates(characters, model, seconds, size, images=images), characters, policy)


def _natively_bound(backend: Backend, characters) -> bool:
    """Every character is registered on `backend` itself: a ready binding with a remote id, on a native-id protocol."""
    if backend.takes_reference_images:
        return False
    bindings = [c.binding_on(backend) for c in characters]
    return all(b is not None and b.status == "ready" and b.remote_id for b in bindings)


def _cheapest(routes: list[Route]) -> Route:
    return min(routes, key=lambda r: (r.quote.amount, r.backend.tier != Tier.OFFICIAL, r.backend.name))


def _pick(routes: list[Route], characters, policy: str) -> tuple[Route, str]:
    """The route `policy` prefers, and why, in words."""
    of = f"of {len(routes)} able"
    if policy == Policy.STABILITY:
        official = [r for r in routes if r.backend.tier == Tier.OFFICIAL]
        if official:
            return _cheapest(official), f"official tier, cheapest {of}" if len(official) > 1 else "official tier"
        return _cheapest(routes), f"no official tier able, cheapest {of}"
    if policy == Policy.CHARACTER and characters:
        native = [r for r in routes if _natively_bound(r.backend, characters)]
        if native:
            return _cheapest(native), f"characters natively bound, cheapest of {len(native)} such"
        images = [r for r in routes if r.backend.takes_reference_images]
        if images:
            return _cheapest(images), f"characters travel by reference images, cheapest of {len(images)} such"
    return _cheapest(routes), f"cheapest {of}" if len(routes) > 1 else "the only one able"


def best(results: list[Route | Refusal], characters, policy: str = Policy.COST) -> Route:
    """The candidate `policy` prefers (cost: the cheapest, official on a tie). Raises NoBackend saying why none can."""
    routes = [r for r in results if isinstance(r, Route)]
    refusals = " ".join(str(r) for r in results if isinstance(r, Refusal))
    if not routes:
        raise NoBackend(f"No backend can make this video. {refusals or 'No backend is enabled.'}")
    chosen, why = _pick(routes, characters, policy)
    if characters and not chosen.to_bind:
        why += " with " + ", ".join(f"@{c.handle}" for c in characters) + " ready"
    reason = f"{policy}: {chosen.backend.name}, {why} at {chosen.quote.describe}{binding_note(chosen)}."
    if refusals:
        reason += f" {refusals}"  # each refusal names its backend and why it was passed over
    return Route(chosen.backend, chosen.quote, reason, policy, _record(results), chosen.to_bind)


def _record(results: list[Route | Refusal]) -> list[dict]:
    """The candidates as a generation stores them: each backend's quote, or why it could not."""
    return [
        {"backend": r.backend.name, "quote": str(r.quote.amount)}
        if isinstance(r, Route)
        else {"backend": r.backend.name, "refused": r.reason}
        for r in results
    ]
