"""Template helpers for money, for what a generation cost, and for its card."""

from decimal import Decimal

from django import template

from generations import cards
from generations.billing import money

register = template.Library()


@register.simple_tag(takes_context=True)
def card(context, generation) -> str:
    """A video's card, kept once the video is finished (generations.cards)."""
    return cards.card(context.get("user"), generation)


@register.filter
def usd(value) -> str:
    """Decimal dollars as "$0.40"; the ledger keeps six places, people read two."""
    return money.usd(value)


@register.simple_tag
def cost(generation) -> str:
    """What a card shows: the net charge once billed, else the estimate (marked as such).

    Uses the amounts the gallery annotates (one query for the page); falls back to the ledger.
    """
    if not hasattr(generation, "charge_amount"):
        return usd(generation.charged())
    if generation.charge_amount is not None:
        net = generation.charge_amount - (generation.refund_amount or 0)
        return f"{usd(net)} (refunded)" if generation.refund_amount else usd(net)
    if generation.estimate_amount is not None:
        if generation.is_terminal:  # ended without a charge: failed, cancelled or timed out
            return usd(0)
        return f"~{usd(generation.estimate_amount)} est."
    return "—"


@register.filter
def per_video(line) -> Decimal | None:
    """Net spend divided by videos: what makes per-second and per-request pricing comparable."""
    return line.net / line.videos if line.videos else None


@register.filter
def duration(value) -> str:
    """A timedelta as people say it: "0.4 s", "12 s", "3 min 5 s", "1 h 2 min"."""
    if value is None:
        return ""
    seconds = value.total_seconds()
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
