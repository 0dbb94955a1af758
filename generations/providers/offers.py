"""What a backend offers: model -> allowed seconds and sizes, and what is wrong with an offer."""

from __future__ import annotations

import re

OFFERS_EXAMPLE = '{"sora-2": {"seconds": ["4", "8"], "sizes": ["720x1280", "1280x720"]}}'
# Seconds and sizes as Generation stores them: at most 4 and 20 characters.
_SECONDS = re.compile(r"[1-9][0-9]{0,3}")
_SIZE = re.compile(r"[1-9][0-9]{1,4}x[1-9][0-9]{1,4}")


def offer_problems(offers) -> list[str]:
    """What is wrong with an `offers` value, in words an admin can act on; [] when it is well formed.

    The shape every protocol's default offer has: model → {"seconds": ["4", ...], "sizes": ["720x1280", ...]}, every
    list non-empty, seconds as strings of whole positive seconds (the form and the router compare strings).
    """
    if not isinstance(offers, dict):
        return [f"Offers must be an object of models, e.g. {OFFERS_EXAMPLE}."]
    problems = []
    for model, offer in offers.items():
        name = f"{model[:40]!r}"
        if not model.strip() or len(model) > 80:
            problems.append(f"Model {name}: a model name is 1 to 80 characters.")
        if not isinstance(offer, dict) or set(offer) != {"seconds", "sizes"}:
            problems.append(f'Model {name}: give exactly "seconds" and "sizes", e.g. '
                            '{"seconds": ["4", "8"], "sizes": ["720x1280"]}.')
            continue
        seconds, sizes = offer["seconds"], offer["sizes"]
        if not (isinstance(seconds, list) and seconds
                and all(isinstance(s, str) and _SECONDS.fullmatch(s) for s in seconds)):
            problems.append(f'Model {name}: "seconds" is a list of whole seconds written as strings, e.g. ["4", "8"].')
        if not (isinstance(sizes, list) and sizes and all(isinstance(s, str) and _SIZE.fullmatch(s) for s in sizes)):
            problems.append(f'Model {name}: "sizes" is a list of WIDTHxHEIGHT strings, e.g. ["720x1280"].')
    return problems
