"""What the simulated provider charges: its own price list, as every real provider keeps one.

The studio keeps its own copy of these prices (each protocol's default prices, or what an admin entered);
a real provider never reads the studio's. That is the point: the fault-injection suite compares the studio's
ledger with what the provider says it billed, so the two lists must be separate. They agree with the studio's
defaults and with `seed_demo`'s demo price today; a change to one and not the other shows up as a mismatch.

How each bills, as the providers do:
- per second of video delivered, on completion (OpenAI, Veo, fal's Kling, Runway, Replicate): a job that
  failed or was cancelled costs nothing;
- per request, on acceptance (the task API's aggregators): a job that ends failed is refunded, so it costs
  nothing in the end either; a job still running is billed already.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

PER_SECOND = "per_second"
PER_REQUEST = "per_request"
# What an unpriced model costs: the demo price `seed_demo` gives backends without a public price list.
DEMO_PER_SECOND = Decimal("0.10")


@dataclass(frozen=True)
class Rate:
    model: str  # "" = any model
    sizes: frozenset[str]  # empty = any size
    unit: str
    amount: Decimal

    def matches(self, model: str, size: str) -> bool:
        return (not self.model or self.model == model) and (not self.sizes or size in self.sizes)


def _rate(model: str, unit: str, amount: str, *sizes: str) -> Rate:
    return Rate(model, frozenset(sizes), unit, Decimal(amount))


# By protocol (the values of simulator.models' protocol constants), most specific row first.
PRICE_LIST: dict[str, tuple[Rate, ...]] = {
    # openai.com/api/pricing (sora-2 $0.10/s; sora-2-pro $0.30/s, $0.50/s at 1024x1792 and 1792x1024)
    "openai": (
        _rate("sora-2-pro", PER_SECOND, "0.50", "1024x1792", "1792x1024"),
        _rate("sora-2-pro", PER_SECOND, "0.30"),
        _rate("", PER_SECOND, "0.10"),
    ),
    # The seed's aggregators: about $0.12 per video, whatever its length.
    "task": (_rate("", PER_REQUEST, "0.12"),),
    # ai.google.dev/gemini-api/docs/pricing: Veo 3.1 $0.40/s, Veo 3.1 Fast $0.15/s.
    "veo": (
        _rate("veo-3.1-fast-generate-preview", PER_SECOND, "0.15"),
        _rate("", PER_SECOND, "0.40"),
    ),
    # fal's Kling 2.1 Master page: $0.28 for every second.
    "fal": (_rate("", PER_SECOND, "0.28"),),
    # No public per-second price for these (see the studio's protocol notes): the demo price.
    "runway": (_rate("", PER_SECOND, str(DEMO_PER_SECOND)),),
    "replicate": (_rate("", PER_SECOND, str(DEMO_PER_SECOND)),),
}


def rate_for(protocol: str, model: str, size: str) -> Rate:
    """The rate a new job of this protocol, model and size is billed at (fixed when the job is created)."""
    for rate in PRICE_LIST.get(protocol, ()):
        if rate.matches(model, size):
            return rate
    return _rate("", PER_SECOND, str(DEMO_PER_SECOND))


def bill(unit: str, amount: Decimal, seconds: int, *, completed: bool, failed: bool) -> Decimal:
    """What one job costs its owner now, under the rate it was created with."""
    if unit == PER_REQUEST:
        return Decimal(0) if failed else amount
    return amount * seconds if completed else Decimal(0)
