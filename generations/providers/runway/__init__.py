"""Runway's API (`POST /text_to_video` or `/image_to_video`, then `GET /tasks/{id}`).

Runway has no character registry: a character travels as its first still, sent as the video's
first frame (`promptImage`), with its name written in the prompt; a start image the creator gives takes its
place (and an end image goes at position "last" on models that take one). Billed in credits per second.
Base URL: https://api.dev.runwayml.com/v1
"""

from generations.providers.base import REFERENCE_IMAGES, ProtocolSpec

SPEC = ProtocolSpec(
    name="runway",
    label="Runway API (/v1/text_to_video, /v1/tasks)",
    client="generations.providers.runway.client.RunwayClient",
    default_tier="official",
    # gen4.5 takes any whole duration from 2 to 10 s; text_to_video takes only these two ratios
    # (runwayml 5.24: types/text_to_video_create_params.py, class Gen4_5).
    default_offers={"gen4.5": {"seconds": ["5", "10"], "sizes": ["1280x720", "720x1280"]}},
    # No public per-second price found (read 2026-11-26): Runway's own setup guide
    # (https://docs.dev.runwayml.com/guides/setup) gives $0.01 per credit, but no first-party page in reach
    # lists gen4.5's credits per second, and third-party pages disagree (12 vs 25). Set one with
    # `add_backend --price-per-second`; `seed_demo` gives the simulated backend a demo price.
    default_prices=(),
    characters=True,
    extract=False,
    remix=False,
    deletes_remotely=True,  # DELETE /tasks/{id} cancels a running task and deletes a finished one
    # gen4.5 takes one image, as the first frame: one character's still per video.
    max_characters=1,
    write_mention=lambda mention: mention.name,
    sends_character_ids=False,
    travel=REFERENCE_IMAGES,
    max_reference_images=1,
    # `promptImage` at position "first"; a model whose offer says "images": ["start", "end"] (veo3.1, kling3.0_pro
    # on Runway) takes one at "last" too. gen4.5 takes a first frame only.
    images=("start",),
    simulator_path="runway/v1",
    simulator_backend="Simulated Runway",
)
