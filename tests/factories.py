"""Test objects, made in one place: users, backends, characters, series and generations.

Plain functions: each fills in what a test does not care about, so a test names only what it is about.
Models are imported inside the functions, as in conftest.py, so importing this module needs no app registry.
"""

from django.core.files.base import ContentFile

SIM_KEY = "sim-local-key"  # a key the simulator accepts (SIMULATOR_API_KEYS in the root conftest.py)
DISCARD_URL = "http://127.0.0.1:9/v1"  # nothing listens on the discard port: a call fails at once


def make_user(username, *, password=None, **fields):
    """`username`, with `username@example.com` and the password `<username>-password` unless given."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(
        username, f"{username}@example.com", password or f"{username}-password", **fields
    )


def make_backend(name, protocol, base_url, **fields):
    """A backend as an admin adds one for a provider that is really there (the simulator): the protocol's
    tier, abilities, idempotency and prices, and the simulator's key."""
    from generations.providers.models import Backend

    backend = Backend(name=name, protocol=protocol, base_url=base_url, api_key=SIM_KEY, max_in_flight=4)
    backend.adopt_protocol_defaults()
    for field, value in fields.items():
        setattr(backend, field, value)
    backend.save()
    backend.install_default_prices()
    return backend


def make_dead_backend(name="Official", protocol="openai_videos", *, prices=True, **fields):
    """A backend on the discard port, for tests in which no provider is ever called. The model's defaults
    (tier official, no extract, no remix) unless `fields` say otherwise; `prices=False` leaves it unpriced."""
    from generations.providers.models import Backend

    backend = Backend.objects.create(name=name, protocol=protocol, base_url=DISCARD_URL, **{"api_key": "k", **fields})
    if prices:
        backend.install_default_prices()
    return backend


def make_character(owner, handle="rex", *, name=None, clip=None, **fields):
    """@`handle`, named after its handle unless `name` is given; `clip` (bytes) is stored as its source clip."""
    from characters.models import Character

    character = Character(owner=owner, name=name or handle.title(), handle=handle, **fields)
    if clip is not None:
        character.source_clip.save("clip.mp4", ContentFile(clip), save=False)
    character.save()
    return character


def make_series(owner, title="Rex at sea", **fields):
    """A series with the model's defaults (sora-2, 4 s, 720x1280, no backend) unless `fields` say otherwise."""
    from generations.storyboards.models import Series

    return Series.objects.create(owner=owner, title=title, **fields)


def make_generation(owner, backend, *, video=None, thumbnail=None, **fields):
    """A generation that the pipeline never touched: a 4-second sora-2 720x1280 "A paper boat", queued, unless
    `fields` say otherwise. `video` and `thumbnail` (bytes) are stored as its files."""
    from generations.jobs.models import Generation

    generation = Generation(
        owner=owner,
        backend=backend,
        **{"prompt": "A paper boat", "model": "sora-2", "seconds": 4, "size": "720x1280", **fields},
    )
    if video is not None:
        generation.video.save("video.mp4", ContentFile(video), save=False)
    if thumbnail is not None:
        generation.thumbnail.save("thumbnail.webp", ContentFile(thumbnail), save=False)
    generation.save()
    return generation
