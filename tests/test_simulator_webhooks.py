"""The simulator calls back finished jobs the way Replicate and fal do, checked by the official SDK where it
has a check (replicate's Webhooks.validate) and by fal's documented recipe where it has none (fal-client)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fal_client
import pytest
import replicate
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fal_client import client as fal_sdk
from replicate.webhook import Webhooks
from standardwebhooks.webhooks import Webhook

from simulator.models import Job
from tests.factories import SIM_KEY

pytestmark = pytest.mark.django_db(transaction=True)

KLING_FAL = "fal-ai/kling-video/v2.1/master/text-to-video"
KLING_REPLICATE = "kwaivgi/kling-v1.6-standard"


class Receiver:
    """An HTTP server on loopback that records every POST (headers and body) and answers `status`."""

    def __init__(self, status: int = 200):
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.deliveries.append((dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.origin}/hooks/1/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int = 1, timeout: float = 15.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.deliveries) < count:
            time.sleep(0.02)
        assert len(self.deliveries) >= count, f"{len(self.deliveries)} callbacks after {timeout} s"
        return self.deliveries

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    receiver = Receiver()
    settings.SIMULATOR_FETCH_ORIGINS = [receiver.origin]  # the simulator calls back only allowed origins
    yield receiver
    receiver.close()


@pytest.fixture
def replicate_client(live_server):
    client = replicate.Client(api_token=SIM_KEY, base_url=f"{live_server.url}/simulator/replicate")
    client.poll_interval = 0.05
    return client


@pytest.fixture
def fal(live_server, monkeypatch):
    monkeypatch.setattr(fal_sdk, "QUEUE_URL_FORMAT", f"{live_server.url}/simulator/fal/")
    return fal_client.SyncClient(key=SIM_KEY)


def verify_fal_the_documented_way(jwks: dict, headers: dict[str, str], body: bytes) -> bool:
    """fal's recipe ("Verifying your webhook"): ED25519 over request id, user id, timestamp and the body's
    SHA-256, joined by newlines, by any key of the JWKS."""
    message = "\n".join(
        [
            headers["X-Fal-Webhook-Request-Id"],
            headers["X-Fal-Webhook-User-Id"],
            headers["X-Fal-Webhook-Timestamp"],
            hashlib.sha256(body).hexdigest(),
        ]
    ).encode()
    for key in jwks["keys"]:
        raw = base64.urlsafe_b64decode(key["x"] + "=" * (-len(key["x"]) % 4))
        try:
            Ed25519PublicKey.from_public_bytes(raw).verify(bytes.fromhex(headers["X-Fal-Webhook-Signature"]), message)
            return True
        except Exception:
            continue
    return False


def test_a_replicate_callback_passes_the_official_sdks_validation(replicate_client, receiver):
    prediction = replicate_client.predictions.create(
        model=KLING_REPLICATE,
        input={"prompt": "A kite over the dunes", "duration": 5},
        webhook=receiver.url,
        webhook_events_filter=["completed"],
    )
    [(headers, body)] = receiver.wait()
    secret = replicate_client.webhooks.default.secret()
    assert secret.key.startswith("whsec_")
    # The SDK's own check raises on any mismatch; the Standard Webhooks library agrees.
    Webhooks.validate(headers=headers, body=body.decode(), secret=secret, tolerance=300)
    assert Webhook(secret.key).verify(body, headers)["id"] == prediction.id
    sent = json.loads(body)
    assert (sent["id"], sent["status"]) == (prediction.id, "succeeded")
    assert sent["output"].startswith("http")
    # A tampered body no longer validates.
    with pytest.raises(Exception, match="invalid"):
        Webhooks.validate(headers=headers, body=body.decode().replace("succeeded", "failed"), secret=secret)


def test_a_failed_prediction_is_called_back_too(replicate_client, receiver):
    replicate_client.predictions.create(
        model=KLING_REPLICATE, input={"prompt": "A kite #fail", "duration": 5}, webhook=receiver.url
    )
    [(headers, body)] = receiver.wait()
    Webhooks.validate(headers=headers, body=body.decode(), secret=replicate_client.webhooks.default.secret())
    assert json.loads(body)["status"] == "failed"


def test_a_fal_callback_verifies_against_the_published_jwks(fal, receiver, live_server):
    handle = fal.submit(KLING_FAL, {"prompt": "A paper boat", "duration": "5"}, webhook_url=receiver.url)
    [(headers, body)] = receiver.wait()
    jwks = requests.get(f"{live_server.url}/simulator/fal/.well-known/jwks.json", timeout=5).json()
    assert jwks["keys"][0]["kty"] == "OKP" and jwks["keys"][0]["crv"] == "Ed25519"
    assert verify_fal_the_documented_way(jwks, headers, body)
    assert not verify_fal_the_documented_way(jwks, headers, body.replace(b'"OK"', b'"ERROR"'))
    sent = json.loads(body)
    assert (sent["request_id"], sent["status"]) == (handle.request_id, "OK")
    assert headers["X-Fal-Webhook-Request-Id"] == handle.request_id
    # The result the callback carries is the one the result URL gives.
    assert sent["payload"]["video"]["url"] == fal.result(KLING_FAL, handle.request_id)["video"]["url"]


def test_a_failed_fal_request_is_called_back_with_its_error(fal, receiver, live_server):
    fal.submit(KLING_FAL, {"prompt": "A paper boat #fail", "duration": "5"}, webhook_url=receiver.url)
    [(headers, body)] = receiver.wait()
    jwks = requests.get(f"{live_server.url}/simulator/fal/.well-known/jwks.json", timeout=5).json()
    assert verify_fal_the_documented_way(jwks, headers, body)
    sent = json.loads(body)
    assert sent["status"] == "ERROR" and sent["payload"]["detail"][0]["type"] == "generation_failed"


def test_the_simulator_calls_back_only_its_allowed_origins(replicate_client, fal, settings):
    receiver = Receiver()
    try:
        settings.SIMULATOR_FETCH_ORIGINS = ["http://127.0.0.1:9"]  # not the receiver's
        prediction = replicate_client.predictions.create(
            model=KLING_REPLICATE, input={"prompt": "A kite", "duration": 5}, webhook=receiver.url
        )
        handle = fal.submit(KLING_FAL, {"prompt": "A paper boat", "duration": "5"}, webhook_url=receiver.url)
        prediction.wait()
        deadline = time.monotonic() + 10
        while not fal.status(KLING_FAL, handle.request_id).__class__.__name__ == "Completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        assert receiver.deliveries == []
    finally:
        receiver.close()


def test_a_malformed_callback_url_is_refused_at_create(live_server):
    base = f"{live_server.url}/simulator"
    auth = {"Authorization": f"Bearer {SIM_KEY}"}
    answer = requests.post(
        f"{base}/replicate/v1/models/{KLING_REPLICATE}/predictions",
        json={"input": {"prompt": "A kite"}, "webhook": "ftp://example.com/"},
        headers=auth,
        timeout=5,
    )
    assert answer.status_code == 422 and "webhook" in answer.json()["detail"]
    answer = requests.post(
        f"{base}/replicate/v1/models/{KLING_REPLICATE}/predictions",
        json={"input": {"prompt": "A kite"}, "webhook": "http://x/", "webhook_events_filter": ["done"]},
        headers=auth,
        timeout=5,
    )
    assert answer.status_code == 422 and "webhook_events_filter" in answer.json()["detail"]
    answer = requests.post(
        f"{base}/fal/{KLING_FAL}?fal_webhook=javascript:alert(1)",
        json={"prompt": "A paper boat"},
        headers={"Authorization": f"Key {SIM_KEY}"},
        timeout=5,
    )
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "fal_webhook"]
    assert not Job.objects.exists()


def test_a_filter_without_completed_gets_no_callback(replicate_client, receiver):
    prediction = replicate_client.predictions.create(
        model=KLING_REPLICATE,
        input={"prompt": "A kite", "duration": 5},
        webhook=receiver.url,
        webhook_events_filter=["start"],
    )
    prediction.wait()
    time.sleep(0.5)
    assert receiver.deliveries == []
