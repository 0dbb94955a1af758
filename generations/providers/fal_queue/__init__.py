"""fal's queue API (`POST queue.fal.run/{app_id}`): Kling, Wan, Hailuo, Seedance, … each a model app by id.

A backend's "model" is a fal app id, and its offer's "arguments" map says how the studio's request (prompt,
seconds, size, a reference image) becomes that app's own arguments. The default offer is Kling 2.1 Master
text-to-video, which takes `duration` as the string "5" or "10" and an `aspect_ratio`; it has no image
argument, so characters' stills are not sent to it. Beside it, Kling 2.1 Standard image-to-video maps the
video's first frame ("{start_image}": the creator's start image, else a mentioned character's still) onto its
`image_url` and an end image onto `tail_image_url`; it takes no aspect ratio (the first frame sets it, and the
studio crops that to the video's size). Characters travel as reference images; fal registers none.
"""

from generations.providers.base import REFERENCE_IMAGES, ProtocolSpec

KLING_MASTER = "fal-ai/kling-video/v2.1/master/text-to-video"
KLING_IMAGE = "fal-ai/kling-video/v2.1/standard/image-to-video"

SPEC = ProtocolSpec(
    name="fal_queue",
    label="fal queue API (model apps by id)",
    client="generations.providers.fal_queue.client.FalQueueClient",
    # fal's own API, billed per second of video for Kling: closer to the official tier than to a reseller's
    # per-request price.
    default_tier="official",
    default_offers={
        KLING_MASTER: {
            "seconds": ["5", "10"],
            "sizes": ["1920x1080", "1080x1920", "1080x1080"],
            "arguments": {
                "prompt": "{prompt}",
                "duration": "{seconds}",
                "aspect_ratio": "{aspect_ratio}",
                "negative_prompt": "blur, distort, and low quality",
                "cfg_scale": 0.5,
            },
        },
        KLING_IMAGE: {
            "seconds": ["5", "10"],
            "sizes": ["1280x720", "720x1280", "720x720"],
            "arguments": {
                "prompt": "{prompt}",
                "duration": "{seconds}",
                "image_url": "{start_image}",
                "tail_image_url": "{end_image}",
                "negative_prompt": "blur, distort, and low quality",
                "cfg_scale": 0.5,
            },
            "needs_start_image": True,
        },
    },
    # https://fal.ai/models/fal-ai/kling-video/v2.1/master/text-to-video/llms.txt (read 2026-11-26): "For 5s
    # video your request will cost $1.40. For every additional second you will be charged $0.28", i.e. $0.28/s.
    # The image-to-video app has no price here: none could be read from a first-party page (Nov 2026). Set one;
    # `seed_demo` gives the simulated backend a demo price for it.
    default_prices=({"model": KLING_MASTER, "size": "", "unit": "per_second", "amount": "0.28"},),
    characters=True,
    extract=False,
    remix=False,
    # The queue API can cancel a request, not delete a finished video.
    deletes_remotely=False,
    # One still travels per video (see max_reference_images), so one character per video.
    max_characters=1,
    write_mention=lambda mention: mention.name,
    sends_character_ids=False,
    travel=REFERENCE_IMAGES,
    # The "{start_image}" placeholder carries one image (an app's image_url / start frame).
    max_reference_images=1,
    # A model takes a start / end image where its offer's arguments name "{start_image}" / "{end_image}".
    image_arguments=True,
    webhooks=True,
    simulator_path="fal",
    simulator_backend="Simulated fal",
)
