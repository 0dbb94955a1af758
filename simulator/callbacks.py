"""Completion callbacks, as Replicate and fal send them: when a job that gave a callback URL ends, the
simulator POSTs a signed notice to it.

Everything else here is computed from the clock when asked (timing.py), but a callback has to be *sent*
when a job ends: one daemon thread per such job sleeps until then (re-reading the job, since a cancel
ends it early), POSTs with short timeouts, and tries twice more on a connection error, a 429 or a 5xx.
A callback lost with the process (a restart mid-job) is lost, as real deliveries sometimes are: the
studio's slower polling still finds the job.

The simulator calls back only URLs on SIMULATOR_FETCH_ORIGINS (origins.py); any other URL is accepted
at create time, as a provider would, and never called.

Signatures, made the providers' ways with key material derived from SECRET_KEY (nothing stored), in its
SIMULATOR_WEBHOOK_KEY_VERSION (change it to rotate every key):
- Replicate: Standard Webhooks (`standardwebhooks`), HMAC-SHA256 keyed by a `whsec_` secret per API key,
  served at GET /v1/webhooks/default/secret.
- fal: ED25519 over "request_id\\nuser_id\\ntimestamp\\nsha256hex(body)", hex, by a key whose public half
  is the JWKS at {fal base}/.well-known/jwks.json.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urljoin

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from . import origins
from .models import Job

log = logging.getLogger(__name__)

TIMEOUT = (3, 10)
ATTEMPTS = 3
NAP = 0.05  # seconds between looks at a job whose end time has passed but which has not ended yet
LONGEST_WAIT = 2 * 3600  # a job not ended by then is not called back

Build = Callable[[Job], tuple[bytes, dict[str, str]]]


def schedule(job: Job, ended: Callable[[Job], bool], build: Build) -> None:
    """Once the transaction commits, call back `job.webhook` when `ended(job)`, with what `build(job)` gives
    (the body and its signed headers, made again for each attempt)."""
    if not job.webhook:
        return
    if origins.refusal(job.webhook):
        log.warning("simulator: job %s gave a callback URL outside SIMULATOR_FETCH_ORIGINS; not called", job.pk)
        return
    thread = threading.Thread(target=_run, args=(job.pk, ended, build), name=f"callback-{job.pk}", daemon=True)
    transaction.on_commit(thread.start)


def _run(job_id: str, ended: Callable[[Job], bool], build: Build) -> None:
    try:
        job = _wait_for_end(job_id, ended)
        if job is not None:
            _deliver(job, build)
    except Exception as exc:  # a background thread: nothing to answer, so say it and stop
        log.warning("simulator: callback for job %s not sent (%s)", job_id, type(exc).__name__)
    finally:
        connection.close()


def _wait_for_end(job_id: str, ended: Callable[[Job], bool]) -> Job | None:
    give_up = time.monotonic() + LONGEST_WAIT
    while time.monotonic() < give_up:
        close_old_connections()
        job = Job.objects.filter(pk=job_id).first()
        if job is None:
            return None
        if ended(job):
            return job
        remaining = (job.finishes_at - timezone.now()).total_seconds()
        time.sleep(min(max(remaining, NAP), 60))
    return None


def _deliver(job: Job, build: Build) -> None:
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the origin checked is the one reached
    with session:
        for attempt in range(ATTEMPTS):
            body, headers = build(job)
            try:
                response = session.post(job.webhook, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
            except requests.RequestException:
                status = None
            else:
                status = response.status_code
                if status < 500 and status != 429:
                    return  # delivered (2xx), or refused for good (4xx): either way, done
            log.info("simulator: callback for job %s answered %s (attempt %s)", job.pk, status, attempt + 1)
            time.sleep(0.5 * 2**attempt)


def _derived(purpose: str) -> bytes:
    version = str(settings.SIMULATOR_WEBHOOK_KEY_VERSION)
    return hmac.new(settings.SECRET_KEY.encode(), f"simulator.{purpose}:{version}".encode(), hashlib.sha256).digest()


# --- Replicate: Standard Webhooks ----------------------------------------------------------------------


def replicate_secret(owner: str) -> str:
    """The signing secret of one API key's account, as GET /v1/webhooks/default/secret gives it."""
    return "whsec_" + base64.b64encode(_derived(f"replicate-webhook:{owner}")).decode()


def replicate_headers(owner: str, delivery_id: str, body: bytes, at: float | None = None) -> dict[str, str]:
    """Signed now, or `at` (unix seconds)."""
    now = datetime.fromtimestamp(at, tz=UTC) if at is not None else datetime.now(tz=UTC)
    signature = Webhook(replicate_secret(owner)).sign(delivery_id, now, body.decode())
    return {
        "Content-Type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


# --- fal: ED25519, public keys as a JWKS -----------------------------------------------------------------


def _fal_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_derived("fal-webhook"))


def fal_jwks() -> dict:
    raw = _fal_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "keys": [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
                "kid": f"simulator-{settings.SIMULATOR_WEBHOOK_KEY_VERSION}",
                "use": "sig",
                "alg": "EdDSA",
            }
        ]
    }


def fal_headers(request_id: str, user_id: str, body: bytes, at: float | None = None) -> dict[str, str]:
    """Signed now, or `at` (unix seconds)."""
    timestamp = str(int(at if at is not None else time.time()))
    message = "\n".join([request_id, user_id, timestamp, hashlib.sha256(body).hexdigest()]).encode()
    return {
        "Content-Type": "application/json",
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": user_id,
        "X-Fal-Webhook-Timestamp": timestamp,
        "X-Fal-Webhook-Signature": _fal_key().sign(message).hex(),
    }


class Site:
    """The host a job was created through, for building absolute links after its request has gone (the
    views' link builders only call `build_absolute_uri`)."""

    def __init__(self, request) -> None:
        self.root = request.build_absolute_uri("/")

    def build_absolute_uri(self, location: str) -> str:
        return urljoin(self.root, location)
