"""Bearer-key check shared by both protocols."""

from __future__ import annotations

import hmac
from functools import wraps

from django.conf import settings
from django.http import HttpRequest

from .models import owner_for


def owner_from(request: HttpRequest) -> str | None:
    """The owner digest for a valid `Authorization: Bearer <key>`, or None."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return None
    # Compare against every configured key in constant time; the list is tiny.
    if not any(hmac.compare_digest(key.encode(), allowed.encode()) for allowed in settings.SIMULATOR_API_KEYS):
        return None
    return owner_for(key)


def bearer(unauthorized):
    """Views of one protocol: answer `unauthorized()` without a valid key, else pass the owner on."""

    def decorator(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            owner = owner_from(request)
            if owner is None:
                return unauthorized()
            return view(request, owner, *args, **kwargs)

        return wrapped

    return decorator


def endpoint(methods: list[str], unauthorized):
    """One simulated API endpoint: no CSRF or login (it is an API), these methods, a valid key."""
    from django.contrib.auth.decorators import login_not_required
    from django.views.decorators.csrf import csrf_exempt
    from django.views.decorators.http import require_http_methods

    def decorator(view):
        return csrf_exempt(login_not_required(require_http_methods(methods)(bearer(unauthorized)(view))))

    return decorator
