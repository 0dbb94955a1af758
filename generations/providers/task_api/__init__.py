"""The reverse / aggregator task API (`POST /sora/generate`, `GET /sora/tasks/{id}`), as in the seed.

A character is registered from a clip URL (or extracted from a finished task) and travels as
`@<its remote id>` inside the prompt. Billed per request, whatever the length; characters free.
"""

from generations.providers.base import ProtocolSpec

SPEC = ProtocolSpec(
    name="task_api",
    label="Task API (aggregator, /sora/generate)",
    client="generations.providers.task_api.client.TaskAPIClient",
    default_tier="aggregator",
    default_offers={"sora-2": {"seconds": ["10", "15"], "sizes": ["720x1280", "1280x720"]}},
    # PRODUCT.md: about $0.12 per video whatever its length; character creation free.
    default_prices=(
        {"model": "", "size": "", "unit": "per_request", "amount": "0.12"},
        {"model": "", "size": "", "unit": "per_character", "amount": "0"},
    ),
    characters=True,
    extract=True,
    remix=False,
    deletes_remotely=False,
    max_characters=None,
    write_mention=lambda mention: f"@{mention.remote_id}",
    idempotency_keys=True,  # as the simulator does; turn it off in the admin for a provider that does not
    sends_character_ids=False,
    clip_by_url=True,
    # Text only, unless the backend's offer gives the model "arguments" that name "{start_image}" / "{end_image}"
    # (an aggregator's image field): they are sent beside the prompt, as data URIs.
    image_arguments=True,
    simulator_path="task/v1",
    simulator_backend="Simulated aggregator",
)
