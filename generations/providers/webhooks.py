"""Completion callbacks ("webhooks"), the part every protocol shares: when to ask for them, where they
arrive, and the checks every signature scheme makes (a timestamp window; keys cached, fetched again once).

A callback is only a hint that a job ended: the studio answers it by polling the job at once, and that
poll decides what happened. Jobs that asked for a callback are still polled, only more slowly
(WEBHOOK_POLL_FACTOR), so a callback that never comes (a studio behind NAT, a delivery that failed, a
simulator restarted mid-job) makes a job slower, never stuck.

Callbacks are asked for only where the provider can reach this site: SITE_URL on a public address, or
WEBHOOKS_ENABLED=on. Each protocol checks its provider's signature in its own package
(`replicate/webhooks.py`: Standard Webhooks; `fal_queue/webhooks.py`: ED25519 against a JWKS) and names the
delivery and the job it is about with a `Delivery`.

Not Gemini (Veo): google-genai 2.x has `GenerateVideosConfig.webhook_config` (sent as `webhookConfig:
{uris: [...]}`, Gemini API mode only), but nothing in the SDK says how a per-request delivery is signed or
checks one (its `webhooks` resource manages project-level endpoints and their HMAC secrets). Third-party
write-ups describe per-request deliveries as RS256 JWTs against Google's JWKS; without the contract in
the SDK, the studio does not ask, and Veo jobs are polled as before.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.urls import reverse

from sora_studio.netguard import is_public

# How far a callback's timestamp may be from our clock, either way (both providers' documented window).
TOLERANCE_SECONDS = 300
# A signature no cached key verifies may come from a key the provider has just rotated in: the keys are
# fetched again, but at most once in this many seconds, so a flood of forged callbacks is not a flood of fetches.
REFETCH_PAUSE_SECONDS = 30
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".test", ".invalid")

T = TypeVar("T")


class WebhookRejected(Exception):
    """A callback that is not believed: answered 400, nothing changes. `retry_later` marks one that could
    not be checked right now (the provider's keys could not be fetched): answered 503, so the provider
    delivers it again."""

    def __init__(self, message: str, *, retry_later: bool = False):
        super().__init__(message)
        self.retry_later = retry_later


@dataclass(frozen=True)
class Delivery:
    """A verified callback: `id` is unique per delivery (a second one with the same id is a replay), `job`
    the provider's id of the job (a studio remote id is that id, or ends with `/<id>`, as fal's do)."""

    id: str
    job: str


def enabled() -> bool:
    """Ask providers for callbacks? WEBHOOKS_ENABLED on/off decides; auto (the default) asks only when
    SITE_URL is on a public address, since a provider cannot call back a loopback or private one."""
    mode = settings.WEBHOOKS_ENABLED
    return mode == "on" or (mode != "off" and site_is_public(settings.SITE_URL))


def callback_url(backend) -> str:
    """Where `backend`'s provider should call back, or "" when callbacks are not to be asked for."""
    if not backend.spec.webhooks or not enabled():
        return ""
    return settings.SITE_URL.rstrip("/") + reverse("webhook", args=[backend.pk])


def site_is_public(url: str) -> bool:
    """Is `url`'s host a public address (every address its name resolves to)?"""
    try:
        host = (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return False
    return bool(host) and _host_is_public(host)


@lru_cache(maxsize=16)
def _host_is_public(host: str) -> bool:
    try:
        return is_public(ipaddress.ip_address(host))
    except ValueError:
        pass  # a name
    if "." not in host or host == "localhost" or host.endswith(_PRIVATE_SUFFIXES):
        return False
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return False
    return bool(addresses) and all(is_public(ipaddress.ip_address(a.split("%")[0])) for a in addresses)


def check_timestamp(value: str | None, *, now: float | None = None) -> int:
    """A callback's unix timestamp, if it is within TOLERANCE_SECONDS of our clock; else WebhookRejected
    (an old one may be a replay that outlived our memory of seen deliveries)."""
    try:
        moment = int(str(value).strip())
    except (TypeError, ValueError):
        raise WebhookRejected("The callback's timestamp is missing or not a number.") from None
    if abs((now if now is not None else time.time()) - moment) > TOLERANCE_SECONDS:
        raise WebhookRejected("The callback's timestamp is outside the 5-minute window.")
    return moment


def cached(key: str, fetch: Callable[[], T], *, ttl: int) -> T:
    """The provider's verification keys from the cache, fetched on a miss."""
    value = cache.get(key)
    if value is None:
        value = fetch()
        cache.set(key, value, ttl)
    return value


def refetched(key: str, fetch: Callable[[], T], *, ttl: int) -> T | None:
    """The keys fetched again (a rotation), or None if that was done less than REFETCH_PAUSE_SECONDS ago."""
    if not cache.add(f"{key}:refetched", 1, REFETCH_PAUSE_SECONDS):
        return None
    value = fetch()
    cache.set(key, value, ttl)
    return value


def header(headers, name: str) -> str:
    """A header's value ("" when absent), whatever the case of its name."""
    value = headers.get(name)
    if value is None:
        value = {k.lower(): v for k, v in headers.items()}.get(name.lower())
    return str(value or "").strip()
