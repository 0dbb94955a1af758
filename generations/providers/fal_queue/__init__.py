"""fal's queue API (`POST queue.fal.run/{app_id}`): Kling, Wan, Hailuo, Seedance, … each a model app by id.

A backend's "model" is a fal app id, and its offer's "arguments" map says how the studio's request (prompt,
seconds, size, a reference image) becomes that app's own arguments. The default offer is Kling 2.1 Master
text-to-video, which takes `duration` as the string "5" or "10" and an `aspect_ratio`; it has no image
argument, so characters' stills are not sent to it (an image-to-video app maps "{image}" onto its
`image_url`). Characters travel as reference images; fal registers none.
"""

from generations.providers.base import REFERENCE_IMAGES, ProtocolSpec

KLING_MASTER = "fal-ai/kling-video/v2.1/master/text-to-video"

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
    },
    # https://fal.ai/models/fal-ai/kling-video/v2.1/master/text-to-video/llms.txt (read 2026-11-26): "For 5s
    # video your request will cost $1.40. For every additional second you will be charged $0.28", i.e. $0.28/s.
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
    # The "{image}" placeholder carries one still (an app's image_url / start frame).
    max_reference_images=1,
    webhooks=True,
    simulator_path="fal",
    simulator_backend="Simulated fal",
)
