"""What a backend offers: model -> allowed seconds and sizes, and what is wrong with an offer."""

from __future__ import annotations

import re

OFFERS_EXAMPLE = '{"sora-2": {"seconds": ["4", "8"], "sizes": ["720x1280", "1280x720"]}}'
# Seconds and sizes as Generation stores them: at most 4 and 20 characters.
_SECONDS = re.compile(r"[1-9][0-9]{0,3}")
_SIZE = re.compile(r"[1-9][0-9]{1,4}x[1-9][0-9]{1,4}")
# What an offer's "arguments" templates may name: filled in per video by `fill_arguments`.
ARGUMENT_PLACEHOLDERS = ("prompt", "seconds", "size", "width", "height", "ratio", "aspect_ratio", "image")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(ARGUMENT_PLACEHOLDERS) + r")\}")


def offer_problems(offers) -> list[str]:
    """What is wrong with an `offers` value, in words an admin can act on; [] when it is well formed.

    The shape every protocol's default offer has: model → {"seconds": ["4", ...], "sizes": ["720x1280", ...]}, every
    list non-empty, seconds as strings of whole positive seconds (the form and the router compare strings).
    A model app (fal, Replicate) also says how the studio's request maps onto its own arguments:
    "arguments": {name: value or "{placeholder}"}, placeholders from ARGUMENT_PLACEHOLDERS.
    """
    if not isinstance(offers, dict):
        return [f"Offers must be an object of models, e.g. {OFFERS_EXAMPLE}."]
    problems = []
    for model, offer in offers.items():
        name = f"{model[:40]!r}"
        if not model.strip() or len(model) > 80:
            problems.append(f"Model {name}: a model name is 1 to 80 characters.")
        if not isinstance(offer, dict) or not {"seconds", "sizes"} <= set(offer) <= {"seconds", "sizes", "arguments"}:
            problems.append(
                f'Model {name}: give "seconds" and "sizes" (and, for model apps, "arguments"), e.g. '
                '{"seconds": ["4", "8"], "sizes": ["720x1280"]}.'
            )
            continue
        arguments = offer.get("arguments", {})
        if not (
            isinstance(arguments, dict)
            and all(isinstance(k, str) and k and isinstance(v, str | int | float | bool) for k, v in arguments.items())
        ):
            problems.append(
                f'Model {name}: "arguments" maps the model\'s argument names to values or templates, '
                'e.g. {"duration": "{seconds}", "aspect_ratio": "{ratio}"}.'
            )
        seconds, sizes = offer["seconds"], offer["sizes"]
        if not (
            isinstance(seconds, list) and seconds and all(isinstance(s, str) and _SECONDS.fullmatch(s) for s in seconds)
        ):
            problems.append(f'Model {name}: "seconds" is a list of whole seconds written as strings, e.g. ["4", "8"].')
        if not (isinstance(sizes, list) and sizes and all(isinstance(s, str) and _SIZE.fullmatch(s) for s in sizes)):
            problems.append(f'Model {name}: "sizes" is a list of WIDTHxHEIGHT strings, e.g. ["720x1280"].')
    return problems


def fill_arguments(arguments: dict, values: dict) -> dict:
    """A model app's arguments for one video: each "{placeholder}" value replaced by the video's own
    (a template that is exactly one placeholder keeps the value's type: `"{seconds}"` with 5 gives 5);
    an argument whose placeholder has no value (no image asked for) is left out."""
    filled = {}
    for name, template in arguments.items():
        if (
            isinstance(template, str)
            and template.startswith("{")
            and template.endswith("}")
            and template[1:-1] in ARGUMENT_PLACEHOLDERS
        ):
            value = values.get(template[1:-1])
            if value is not None:
                filled[name] = value
        elif isinstance(template, str):
            # Only the known placeholders are replaced; any other brace is the admin's text, kept as written.
            filled[name] = _PLACEHOLDER.sub(
                lambda m: str(values[m.group(1)]) if values.get(m.group(1)) is not None else m.group(0), template
            )
        else:
            filled[name] = template
    return filled
