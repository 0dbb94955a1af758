"""Replicate's predictions API (`POST /v1/models/{owner}/{name}/predictions`, `GET /v1/predictions/{id}`).

Replicate hosts many video models, each with its own inputs: a backend's offer maps the studio's request onto
each model's arguments ("arguments", see generations.providers.offers). A character travels as a still: the
first reference image becomes the model's `start_image` (a first frame), so one character per video.

The default offer, from the models' input schemas on replicate.com (read Nov 2026):
- `kwaivgi/kling-v1.6-standard` (https://replicate.com/kwaivgi/kling-v1.6-standard/api): text-to-video;
  `prompt`, `duration` 5 | 10 (an integer), `aspect_ratio` 16:9 | 9:16 | 1:1, optional `start_image`
  ("Aspect ratio ... Ignored if start_image is provided"). First, so a text-only video has a model.
- `kwaivgi/kling-v2.1` (https://replicate.com/kwaivgi/kling-v2.1/api): image-to-video only, "You must use a
  start image with kling-v2.1"; `mode` standard (720p) | pro (1080p), `duration` 5 | 10, no aspect ratio
  (the start image sets it). Its `end_image` ("Last frame of the video (pro mode is required when this parameter
  is set)") is mapped too, with "mode": "pro" laid over the arguments when an end image is sent. It needs a
  start image or a mentioned character with a still; without one Replicate refuses the input (422) and the job
  fails saying so.

"{start_image}" is the video's first frame: the creator's start image, else the first mentioned character's
still (the older "{image}" is the same value).

Prices: Replicate bills these models per second of output video, but no first-party price page could be read
from here (searched Nov 2026: only third-party resellers' estimates), so there are no default prices. Set one
with `manage.py add_backend ... --price-per-second USD` or in the admin; `seed_demo` gives the simulated
backend a demo price.
"""

from generations.providers.base import REFERENCE_IMAGES, ProtocolSpec

SPEC = ProtocolSpec(
    name="replicate",
    label="Replicate (predictions API)",
    client="generations.providers.replicate.client.ReplicateClient",
    default_tier="official",
    default_offers={
        "kwaivgi/kling-v1.6-standard": {
            "seconds": ["5", "10"],
            "sizes": ["1280x720", "720x1280", "720x720"],
            "arguments": {
                "prompt": "{prompt}",
                "duration": "{seconds}",
                "aspect_ratio": "{ratio}",
                "start_image": "{start_image}",
            },
        },
        "kwaivgi/kling-v2.1": {
            "seconds": ["5", "10"],
            "sizes": ["1280x720", "720x1280"],
            "arguments": {
                "prompt": "{prompt}",
                "duration": "{seconds}",
                "mode": "standard",
                "start_image": "{start_image}",
                "end_image": "{end_image}",
            },
            "end_image_arguments": {"mode": "pro"},
            "needs_start_image": True,
        },
    },
    default_prices=(),
    characters=True,
    extract=False,
    remix=False,
    # Replicate can cancel a running prediction but has no API to delete a finished one.
    deletes_remotely=False,
    max_characters=1,
    write_mention=lambda mention: mention.name,
    sends_character_ids=False,
    lists_jobs=True,
    travel=REFERENCE_IMAGES,
    max_reference_images=1,
    # A model takes a start / end image where its offer's arguments name "{start_image}" / "{end_image}".
    image_arguments=True,
    webhooks=True,
    simulator_path="replicate/v1",
    simulator_backend="Simulated Replicate",
)
