"""Expiring, signed download links for task_api results, like a provider's CDN URLs.

A link carries `expires` (unix seconds) and `signature` = HMAC-SHA256 over the task id, the
variant and the expiry, keyed by SECRET_KEY; no bearer token is needed to follow it.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings

SALT = b"simulator.file-link"


def signature(task_id: str, variant: str, expires: int) -> str:
    key = hashlib.sha256(SALT + settings.SECRET_KEY.encode()).digest()
    message = f"{task_id}:{variant}:{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def is_valid(task_id: str, variant: str, expires: str, given: str, *, now: float | None = None) -> bool:
    try:
        expiry = int(expires)
    except (TypeError, ValueError):
        return False
    if expiry < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(signature(task_id, variant, expiry), given or "")
