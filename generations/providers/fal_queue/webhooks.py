"""fal's completion callbacks: `?fal_webhook=<url>` on the queue submit, and deliveries signed with ED25519
by keys fal publishes as a JWKS.

# Reference: https://docs.fal.ai/model-apis/model-endpoints/webhooks ("Verifying your webhook"), and the
# official SDK's fal_client/client.py (SyncClient.submit(webhook_url=...) sends `fal_webhook`)

A delivery carries `X-Fal-Webhook-Request-Id`, `-User-Id`, `-Timestamp` (unix seconds) and `-Signature`
(hex): an ED25519 signature of "request_id\\nuser_id\\ntimestamp\\nsha256hex(body)" by one of the keys at
https://rest.alpha.fal.ai/.well-known/jwks.json (OKP / Ed25519, `x` base64url). A backend elsewhere (the
simulator) publishes its keys at `{base_url}/.well-known/jwks.json`. The keys are cached; a signature none
of them verifies makes the studio fetch them once more (a rotation). The body is `{request_id, status:
OK|ERROR, payload}`: only its request id is read, the poll that follows reads the rest.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from generations.providers.base import ProviderError
from generations.providers.webhooks import Delivery, WebhookRejected, cached, check_timestamp, header, refetched

OFFICIAL_JWKS = "https://rest.alpha.fal.ai/.well-known/jwks.json"
KEYS_TTL = 600
MAX_JWKS_BYTES = 64 * 1024
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")  # as the queue hands them out (client.py)


def submit_params(url: str) -> dict:
    """The query parameters of a submit that is to be called back at `url`."""
    return {"fal_webhook": url}


def jwks_url(backend) -> str:
    """Where `backend`'s provider publishes its webhook keys: fal's own for fal's hosts, else beside the API."""
    host = (urlsplit(backend.base_url).hostname or "").lower()
    if host in ("fal.run", "fal.ai") or host.endswith((".fal.run", ".fal.ai")):
        return OFFICIAL_JWKS
    return backend.base_url.rstrip("/") + "/.well-known/jwks.json"


def verify(client, headers, body: bytes) -> Delivery:
    """The delivery, if fal signed it; WebhookRejected otherwise."""
    request_id = header(headers, "X-Fal-Webhook-Request-Id")
    user_id = header(headers, "X-Fal-Webhook-User-Id")
    timestamp = header(headers, "X-Fal-Webhook-Timestamp")
    signature = header(headers, "X-Fal-Webhook-Signature")
    if not (request_id and user_id and timestamp and signature):
        raise WebhookRejected("The callback lacks fal's X-Fal-Webhook-* headers.")
    if not _REQUEST_ID.fullmatch(request_id) or len(user_id) > 200:
        raise WebhookRejected("The callback's request id or user id is malformed.")
    check_timestamp(timestamp)
    try:
        signature_bytes = bytes.fromhex(signature)
    except ValueError:
        raise WebhookRejected("The callback's signature is not hex.") from None
    message = "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()
    url = jwks_url(client.backend)
    key = f"webhooks:fal:{hashlib.sha256(url.encode()).hexdigest()[:24]}"
    keys = cached(key, lambda: fetch_keys(client, url), ttl=KEYS_TTL)
    if not _verified(keys, signature_bytes, message):
        fresh = refetched(key, lambda: fetch_keys(client, url), ttl=KEYS_TTL)
        if fresh is None or fresh == keys or not _verified(fresh, signature_bytes, message):
            raise WebhookRejected("The callback's signature matches none of fal's published keys.")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise WebhookRejected("The callback's body is not JSON.") from None
    if not isinstance(data, dict) or data.get("request_id", request_id) != request_id:
        raise WebhookRejected("The callback's body is about another request than its signed headers.")
    # fal signs a fresh timestamp on each of its retries, so request id + timestamp names one delivery.
    return Delivery(id=f"{request_id}:{timestamp}", job=request_id)


def _verified(keys: tuple[bytes, ...], signature: bytes, message: bytes) -> bool:
    for raw in keys:
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(signature, message)
        except (InvalidSignature, ValueError):
            continue
        return True
    return False


def fetch_keys(client, url: str) -> tuple[bytes, ...]:
    """The Ed25519 public keys of the JWKS at `url` (the API key goes along only to the backend's own origin)."""
    try:
        response = client.http.request("GET", url, stream=True, allow_redirects=False)
        with response:
            content = response.raw.read(MAX_JWKS_BYTES + 1, decode_content=True)
    except ProviderError as exc:
        raise WebhookRejected(f"Could not fetch fal's webhook keys: {exc.message}", retry_later=True) from None
    except OSError:
        raise WebhookRejected("Could not read fal's webhook keys.", retry_later=True) from None
    if response.status_code != 200 or len(content) > MAX_JWKS_BYTES:
        raise WebhookRejected("fal's webhook keys could not be read (not a small JWKS).", retry_later=True)
    try:
        entries = json.loads(content).get("keys")
    except (ValueError, AttributeError, RecursionError):
        entries = None
    keys = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("kty") == "OKP" and entry.get("crv") == "Ed25519":
            raw = _base64url(entry.get("x"))
            if raw is not None and len(raw) == 32:
                keys.append(raw)
    if not keys:
        raise WebhookRejected("fal's JWKS holds no Ed25519 key.", retry_later=True)
    return tuple(keys)


def _base64url(value) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
