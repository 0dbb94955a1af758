"""The OpenAI Videos API shape (`POST /videos`), as served by OpenAI and by gateways (LiteLLM, new-api, ...).

A character is registered from its clip and travels as `characters: [{"id": ...}]` (two at most),
with its name written in the prompt. A start image goes as `input_reference` (multipart), cropped to the
video's size, which OpenAI requires. Billed per second of video delivered.
"""

from generations.providers.base import ProtocolSpec

SPEC = ProtocolSpec(
    name="openai_videos",
    label="OpenAI Videos API (/v1/videos)",
    client="generations.providers.openai_videos.client.OpenAIVideosClient",
    default_tier="official",
    default_offers={
        "sora-2": {"seconds": ["4", "8", "12"], "sizes": ["720x1280", "1280x720"]},
        "sora-2-pro": {"seconds": ["4", "8", "12"], "sizes": ["720x1280", "1280x720", "1024x1792", "1792x1024"]},
    },
    # PRODUCT.md: sora-2 $0.10/s; sora-2-pro $0.30/s at 720p, $0.50/s at 1024x1792 and 1792x1024.
    default_prices=(
        {"model": "sora-2", "size": "", "unit": "per_second", "amount": "0.10"},
        {"model": "sora-2-pro", "size": "", "unit": "per_second", "amount": "0.30"},
        {"model": "sora-2-pro", "size": "1024x1792", "unit": "per_second", "amount": "0.50"},
        {"model": "sora-2-pro", "size": "1792x1024", "unit": "per_second", "amount": "0.50"},
        {"model": "", "size": "", "unit": "per_character", "amount": "0"},
    ),
    characters=True,
    extract=False,
    remix=True,
    deletes_remotely=True,
    max_characters=2,
    write_mention=lambda mention: mention.name,
    # The simulator honours Idempotency-Key (and OpenAI documents it for POST requests).
    idempotency_keys=True,
    sends_character_ids=True,
    lists_jobs=True,
    clip_seconds=(2, 4),
    # `input_reference`, the first frame: an image of exactly the video's size (the studio crops it to fit).
    images=("start",),
    simulator_path="openai/v1",
    simulator_backend="Simulated official",
)
