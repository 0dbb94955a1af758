"""A stand-in video provider speaking both backend protocols over real HTTP.

openai_videos at /simulator/openai/v1 (openai_views.py), task_api at /simulator/task/v1
(task_views.py). Jobs finish by the clock (timing.py), render real MP4s on first download
(render.py, assets.py) and misbehave on request through prompt words (triggers.py):
#fail, #moderation, #slow, #garbage, #flaky.

Knobs (settings / env): SIMULATOR_SPEED, SIMULATOR_API_KEYS, SIMULATOR_MAX_IN_FLIGHT,
SIMULATOR_FETCH_ORIGINS (where character clips may be fetched from; SITE_URL's origin if empty), and
SIMULATOR_URL_TTL (seconds download links and assets live after completion, default 3600;
read with getattr, so only tests or a settings override set it), SIMULATOR_IDEMPOTENCY_KEYS (which protocols
deduplicate creates by key).

Fault mode (faults.py, SIMULATOR_FAULT_*) fails a share of every protocol's calls at random; the simulator's
own books (books.py, prices.py) say what it created, for which key and prompt, and what it billed.
"""
