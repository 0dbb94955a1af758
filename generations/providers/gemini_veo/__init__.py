"""Google's Veo through the Gemini API: `POST models/{model}:predictLongRunning`, then poll the operation.

A character travels as up to three reference images ("asset" references) sent with every video; Veo
keeps no character of its own. A start image goes as `instances[0].image`, an end image as `lastFrame`; with a
start image the characters' stills stay at home (Veo's first-frame and reference-image modes are separate)
and their names carry them. Billed per second of video delivered.
"""

from generations.providers.base import REFERENCE_IMAGES, ProtocolSpec

SIZES = ["1280x720", "720x1280", "1920x1080", "1080x1920"]

SPEC = ProtocolSpec(
    name="gemini_veo",
    label="Google Veo (Gemini API, predictLongRunning)",
    client="generations.providers.gemini_veo.client.GeminiVeoClient",
    default_tier="official",
    default_offers={
        "veo-3.1-generate-preview": {"seconds": ["4", "6", "8"], "sizes": SIZES},
        "veo-3.1-fast-generate-preview": {"seconds": ["4", "6", "8"], "sizes": SIZES},
    },
    default_prices=(
        # https://ai.google.dev/gemini-api/docs/pricing, "Veo 3.1 Standard, video with audio: $0.40 (720p and
        # 1080p)" per second, as transcribed from that page on 2026-10-07 (read here in Nov 2026).
        {"model": "veo-3.1-generate-preview", "size": "", "unit": "per_second", "amount": "0.40"},
        # Veo 3.1 Fast: $0.15/s at 720p and 1080p, as quoted from Google's price list by
        # https://www.aifreeapi.com/es/posts/veo-3-1-api-rate-limit (March 2026; read Nov 2026). The transcript of
        # Google's own page we could read lists the Standard row only: check the page before relying on this one.
        {"model": "veo-3.1-fast-generate-preview", "size": "", "unit": "per_second", "amount": "0.15"},
    ),
    characters=True,  # as reference images
    extract=False,
    remix=False,
    deletes_remotely=False,  # an operation cannot be cancelled or deleted through the Gemini API
    max_characters=3,  # one still each at least, and Veo takes three reference images
    write_mention=lambda mention: mention.name,
    sends_character_ids=False,
    travel=REFERENCE_IMAGES,
    max_reference_images=3,
    # `instances[0].image` (the first frame) and `instances[0].lastFrame` (interpolation: it needs a first frame).
    images=("start", "end"),
    simulator_path="veo/v1beta",
    simulator_backend="Simulated Veo",
)
