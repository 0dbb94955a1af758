"""What a backend offers: model -> allowed seconds and sizes, and what is wrong with an offer."""

from __future__ import annotations

import re

OFFERS_EXAMPLE = '{"sora-2": {"seconds": ["4", "8"], "sizes": ["720x1280", "1280x720"]}}'
# Seconds and sizes as Generation stores them: at most 4 and 20 characters.
_SECONDS = re.compile(r"[1-9][0-9]{0,3}")
_SIZE = re.compile(r"[1-9][0-9]{1,4}x[1-9][0-9]{1,4}")
# What an offer's "arguments" templates may name: filled in per video by `fill_arguments`. "{start_image}" is the
# video's first frame: the start image the creator gave, else the first mentioned character's still ("{image}",
# its older name, is the same value); "{end_image}" is the end image.
ARGUMENT_PLACEHOLDERS = (
    "prompt",
    "seconds",
    "size",
    "width",
    "height",
    "ratio",
    "aspect_ratio",
    "image",
    "start_image",
    "end_image",
)
_PLACEHOLDER = re.compile(r"\{(" + "|".join(ARGUMENT_PLACEHOLDERS) + r")\}")
IMAGE_ROLES = ("start", "end")
OFFER_KEYS = {"seconds", "sizes", "arguments", "end_image_arguments", "images", "needs_start_image"}


def offer_problems(offers) -> list[str]:
    """What is wrong with an `offers` value, in words an admin can act on; [] when it is well formed.

    The shape every protocol's default offer has: model → {"seconds": ["4", ...], "sizes": ["720x1280", ...]}, every
    list non-empty, seconds as strings of whole positive seconds (the form and the router compare strings).
    A model app (fal, Replicate) also says how the studio's request maps onto its own arguments:
    "arguments": {name: value or "{placeholder}"}, placeholders from ARGUMENT_PLACEHOLDERS, and, optionally,
    "end_image_arguments": the arguments that change when an end image is sent (kling-v2.1 on Replicate takes
    one in "pro" mode only). A model of a protocol that takes start and end images by itself may say which it
    takes: "images": ["start"] or ["start", "end"] (a Runway model that takes a last frame too); an
    image-to-video model says "needs_start_image": true, so a video with neither a start image nor a character
    still to start from is not sent to it.
    """
    if not isinstance(offers, dict):
        return [f"Offers must be an object of models, e.g. {OFFERS_EXAMPLE}."]
    problems = []
    for model, offer in offers.items():
        name = f"{model[:40]!r}"
        if not model.strip() or len(model) > 80:
            problems.append(f"Model {name}: a model name is 1 to 80 characters.")
        if not isinstance(offer, dict) or not {"seconds", "sizes"} <= set(offer) <= OFFER_KEYS:
            problems.append(
                f'Model {name}: give "seconds" and "sizes" (and, for model apps, "arguments"), e.g. '
                '{"seconds": ["4", "8"], "sizes": ["720x1280"]}.'
            )
            continue
        for key in ("arguments", "end_image_arguments"):
            if not _argument_map(offer.get(key, {})):
                problems.append(
                    f'Model {name}: "{key}" maps the model\'s argument names to values or templates, '
                    'e.g. {"duration": "{seconds}", "aspect_ratio": "{ratio}"}.'
                )
        if not isinstance(offer.get("needs_start_image", False), bool):
            problems.append(f'Model {name}: "needs_start_image" is true or false.')
        images = offer.get("images", [])
        if not (isinstance(images, list) and all(role in IMAGE_ROLES for role in images)):
            problems.append(f'Model {name}: "images" lists the images the model takes: ["start"] or ["start", "end"].')
        seconds, sizes = offer["seconds"], offer["sizes"]
        if not (
            isinstance(seconds, list) and seconds and all(isinstance(s, str) and _SECONDS.fullmatch(s) for s in seconds)
        ):
            problems.append(f'Model {name}: "seconds" is a list of whole seconds written as strings, e.g. ["4", "8"].')
        if not (isinstance(sizes, list) and sizes and all(isinstance(s, str) and _SIZE.fullmatch(s) for s in sizes)):
            problems.append(f'Model {name}: "sizes" is a list of WIDTHxHEIGHT strings, e.g. ["720x1280"].')
    return problems


def _argument_map(arguments) -> bool:
    return isinstance(arguments, dict) and all(
        isinstance(k, str) and k and isinstance(v, str | int | float | bool) for k, v in arguments.items()
    )


def image_roles_in(offer: dict) -> set[str]:
    """The images a model app takes, read from its arguments: "start" where they name the first frame
    ("{start_image}" or "{image}"), "end" where they name "{end_image}"."""
    templates = [v for key in ("arguments", "end_image_arguments") for v in (offer.get(key) or {}).values()]
    named = {name for v in templates if isinstance(v, str) for name in _PLACEHOLDER.findall(v)}
    return {role for role, names in (("start", {"start_image", "image"}), ("end", {"end_image"})) if named & names}


def arguments_for(offer: dict, default: dict, *, end_image: bool) -> dict:
    """A model app's argument templates for one video: its "arguments" (else `default`), with its
    "end_image_arguments" laid over them when the video has an end image."""
    arguments = dict(offer.get("arguments") or default)
    if end_image:
        arguments.update(offer.get("end_image_arguments") or {})
    return arguments


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
