"""Replicate's completion callbacks: `webhook` + `webhook_events_filter: ["completed"]` on the create, and
deliveries signed the Standard Webhooks way, checked with the `standardwebhooks` package.

# Reference: https://replicate.com/docs/topics/webhooks/verify-webhook and the official SDK's
# replicate/webhook.py (Webhooks.default.secret, Webhooks.validate)

A delivery carries `webhook-id`, `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`, several space-separated during a rotation), keyed by the account's signing secret
(`whsec_<base64>`) from `GET /v1/webhooks/default/secret`. The secret is cached; a signature it does not
verify makes the studio fetch it once more (it may have been rotated). The body is the prediction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from django.conf import settings
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from generations.providers.base import ProviderError
from generations.providers.webhooks import Delivery, WebhookRejected, cached, check_timestamp, header, refetched

EVENTS = ["completed"]  # one callback, when the prediction ends (succeeded, failed or canceled)
SECRET_TTL = 600
_SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{16,200}")
_PREDICTION_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


def create_params(url: str) -> dict:
    """What a create carries to be called back at `url`."""
    return {"webhook": url, "webhook_events_filter": EVENTS}


def verify(client, headers, body: bytes) -> Delivery:
    """The delivery, if Replicate signed it; WebhookRejected otherwise."""
    delivery_id = header(headers, "webhook-id")
    if not delivery_id or len(delivery_id) > 200:
        raise WebhookRejected("The callback has no webhook-id.")
    check_timestamp(header(headers, "webhook-timestamp"))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("The callback's body is not UTF-8.") from None
    key = _cache_key(client)
    secret = cached(key, lambda: _fetch_secret(client), ttl=SECRET_TTL)
    if not _signed(secret, text, headers):
        fresh = refetched(key, lambda: _fetch_secret(client), ttl=SECRET_TTL)
        if fresh is None or fresh == secret or not _signed(fresh, text, headers):
            raise WebhookRejected("The callback's signature does not match the signing secret.")
    try:
        prediction = json.loads(text)
    except (ValueError, RecursionError):
        raise WebhookRejected("The callback's body is not JSON.") from None
    job = prediction.get("id") if isinstance(prediction, dict) else None
    if not isinstance(job, str) or not _PREDICTION_ID.fullmatch(job):
        raise WebhookRejected("The callback's body is not a prediction.")
    return Delivery(id=delivery_id, job=job)


def _signed(secret: str, text: str, headers) -> bool:
    """Does one of the delivery's signatures match? (standardwebhooks checks the timestamp window too)."""
    signed = {name: header(headers, name) for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    try:
        Webhook(secret).verify(text, signed, json_parse=False)
    except (WebhookVerificationError, ValueError, TypeError):  # ValueError: broken base64 or signature list
        return False
    return True


def _cache_key(client) -> str:
    # Per backend and per key (a new API key may belong to another account, with another secret), named by a
    # keyed digest so the cache never holds anything that could be checked against a guessed key.
    token = client.http.auth_headers.get("Authorization", "").encode()
    digest = hmac.new(settings.SECRET_KEY.encode(), token, hashlib.sha256).hexdigest()[:16]
    return f"webhooks:replicate:{client.backend.pk}:{digest}"


def _fetch_secret(client) -> str:
    try:
        data = client.http.json("GET", "webhooks/default/secret")
    except ProviderError as exc:
        raise WebhookRejected(f"Could not fetch the webhook signing secret: {exc.message}", retry_later=True) from None
    secret = data.get("key")
    if not isinstance(secret, str) or not _SECRET.fullmatch(secret):
        raise WebhookRejected("The provider's webhook signing secret is not a whsec_ secret.", retry_later=True)
    return secret
