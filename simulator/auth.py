"""The key check every simulated protocol shares, each presenting its key its own way."""

from __future__ import annotations

import hmac
from functools import wraps

from django.conf import settings
from django.http import HttpRequest

from .models import owner_for


def presented_key(request: HttpRequest, scheme: str = "bearer") -> str:
    """The key as this protocol presents it: `Authorization: Bearer <key>` (OpenAI, task API, Runway,
    Replicate), `Authorization: Key <key>` (fal), or `x-goog-api-key: <key>` (the Gemini API, which
    also takes `?key=`)."""
    if scheme == "goog":
        return (request.headers.get("x-goog-api-key") or request.GET.get("key") or "").strip()
    given, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if given.lower() == scheme else ""


def owner_from(request: HttpRequest, scheme: str = "bearer") -> str | None:
    """The owner digest for a valid key presented the protocol's way, or None."""
    key = presented_key(request, scheme)
    if not key:
        return None
    # Compare against every configured key in constant time; the list is tiny.
    if not any(hmac.compare_digest(key.encode(), allowed.encode()) for allowed in settings.SIMULATOR_API_KEYS):
        return None
    return owner_for(key)


def bearer(unauthorized, scheme: str = "bearer"):
    """Views of one protocol: answer `unauthorized()` without a valid key, else pass the owner on."""

    def decorator(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            owner = owner_from(request, scheme)
            if owner is None:
                return unauthorized()
            return view(request, owner, *args, **kwargs)

        return wrapped

    return decorator


def endpoint(methods: list[str], unauthorized, scheme: str = "bearer"):
    """One simulated API endpoint: no CSRF or login (it is an API), these methods, a valid key."""
    from django.contrib.auth.decorators import login_not_required
    from django.views.decorators.csrf import csrf_exempt
    from django.views.decorators.http import require_http_methods

    def decorator(view):
        return csrf_exempt(login_not_required(require_http_methods(methods)(bearer(unauthorized, scheme)(view))))

    return decorator
