"""Small helpers the management commands share: find a user or backend, print JSON."""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def get_user(username: str):
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"No user called {username!r}.") from None


def get_backend(name: str | None):
    from generations.providers.models import Backend

    if not name:
        return None
    try:
        return Backend.objects.get(name=name)
    except Backend.DoesNotExist:
        names = ", ".join(Backend.objects.values_list("name", flat=True)) or "none yet"
        raise CommandError(f"No backend called {name!r} (backends: {names}).") from None


def dump(data) -> str:
    return json.dumps(data, indent=2, default=str)
