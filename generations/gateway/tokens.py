"""Personal API tokens: issued once, kept as a SHA-256, looked up by that hash, rate-limited per token.

A token is `sk-studio-` + 43 random URL-safe characters (256 bits): too long to guess, so a plain SHA-256
(no salt, no slow hash) is enough, and looking the hash up through a unique index compares nothing
secret in Python (no timing to measure).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from generations.gateway.models import ApiToken

PREFIX = "sk-studio-"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(user, name: str, monthly_cap: Decimal | None = None) -> tuple[ApiToken, str]:
    """A new token for `user`, and its secret: the only time the secret exists outside the client."""
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name.strip()[:80],
        monthly_cap=monthly_cap,
        token_hash=digest(secret),
        hint=f"{PREFIX}…{secret[-4:]}",
    )
    return token, secret


def authenticate(authorization: str) -> ApiToken | None:
    """The live token an `Authorization: Bearer …` header carries, or None (missing, unknown, revoked,
    or its creator's account is deactivated)."""
    scheme, _, secret = authorization.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    return (
        ApiToken.objects.live().select_related("user").filter(token_hash=digest(secret), user__is_active=True).first()
    )


def throttle(token: ApiToken) -> int | None:
    """Count one request against the token's window and note when it was used. None if it may go on,
    else how many seconds until the window ends (the Retry-After).

    A fixed window kept on the token's row: both steps are compare-and-set updates, so requests served
    by different processes (gunicorn workers, several hosts on one database) share one count."""
    limit, window = settings.API_RATE_LIMIT, timedelta(seconds=settings.API_RATE_WINDOW_SECONDS)
    row = ApiToken.objects.filter(pk=token.pk)
    for _ in range(2):  # a second round when another process started a new window between the two updates
        now = timezone.now()
        counted = row.filter(window_started_at__gt=now - window, window_count__lt=limit).update(
            window_count=F("window_count") + 1, last_used_at=now
        )
        if counted:
            return None
        started = row.filter(Q(window_started_at__isnull=True) | Q(window_started_at__lte=now - window)).update(
            window_started_at=now, window_count=1, last_used_at=now
        )
        if started:
            return None
    window_start = row.values_list("window_started_at", flat=True).first() or now
    return max(1, math.ceil((window_start + window - now).total_seconds()))
