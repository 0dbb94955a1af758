"""Personal API tokens: made on their page (shown once) or by `create_token`, stored as a hash, revocable,
the only way in to /v1/ (no session, no CSRF), rate-limited per token across processes."""

from __future__ import annotations

import hashlib
import json
import socket
import urllib.error
import urllib.request
from io import StringIO

import openai
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from generations.gateway.models import ApiToken
from tests import workers
from tests.gateway import sdk, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_page_makes_a_token_shows_it_once_and_keeps_only_its_hash(client, alice, live_server):
    client.force_login(alice)
    page = client.get(reverse("gateway:tokens"))
    assert page.status_code == 200 and "No tokens yet" in page.content.decode()
    assert 'href="/api-tokens/" aria-current="page"' in page.content.decode()  # in the navigation

    made = client.post(reverse("gateway:tokens"), {"name": "nightly batch", "monthly_cap": "25"})
    html = made.content.decode()
    token = ApiToken.objects.get()
    secret = html.split('id="new-token">')[1].split("<")[0]
    assert secret.startswith("sk-studio-") and len(secret) > 50
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest() and secret not in token.hint
    assert f'api_key="{secret}"' in html  # the three-line script, ready to paste
    assert token.name == "nightly batch" and str(token.monthly_cap) == "25.00" and token.user == alice

    again = client.get(reverse("gateway:tokens")).content.decode()
    assert secret not in again and token.hint in again and "never" in again  # not shown again; not used yet

    assert sdk(live_server, secret).videos.list().data == []
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert "never" not in client.get(reverse("gateway:tokens")).content.decode()  # "now", "2 seconds ago"…


def test_the_page_with_htmx_answers_with_its_fragment_and_refuses_a_bad_form(client, alice):
    client.force_login(alice)
    made = client.post(reverse("gateway:tokens"), {"name": "n8n"}, headers={"HX-Request": "true"})
    assert made.status_code == 200 and 'id="new-token"' in made.content.decode()
    assert "<html" not in made.content.decode()

    refused = client.post(reverse("gateway:tokens"), {"name": "", "monthly_cap": "-3"})
    assert refused.status_code == 400
    assert "This field is required" in refused.content.decode() and "cannot be negative" in refused.content.decode()
    assert ApiToken.objects.count() == 1


def test_a_revoked_token_is_refused_and_only_its_owner_can_revoke_it(client, alice, bob, live_server):
    secret = token_for(alice, "ci")
    token = ApiToken.objects.get()
    client.force_login(bob)
    assert client.post(reverse("gateway:revoke", args=[token.pk])).status_code == 404
    assert alice.username not in client.get(reverse("gateway:tokens")).content.decode()

    client.force_login(alice)
    row = client.post(reverse("gateway:revoke", args=[token.pk]), headers={"HX-Request": "true"})
    assert "Revoked" in row.content.decode() and row.content.decode().lstrip().startswith("<tr")
    with pytest.raises(openai.AuthenticationError) as refused:
        sdk(live_server, secret).videos.list()
    assert refused.value.code == "invalid_api_key" and secret not in refused.value.message


def test_a_wrong_a_missing_token_and_a_session_are_all_401(client, alice, live_server):
    token_for(alice)
    with pytest.raises(openai.AuthenticationError) as wrong:
        sdk(live_server, "sk-studio-not-a-real-token").videos.list()
    assert wrong.value.status_code == 401 and wrong.value.code == "invalid_api_key"
    assert wrong.value.response.headers["WWW-Authenticate"] == "Bearer"
    with pytest.raises(openai.AuthenticationError):
        sdk(live_server, "sk-proj-an-openai-key").videos.list()

    client.force_login(alice)  # a logged-in browser session counts for nothing on /v1/
    session = client.get("/v1/videos")
    assert session.status_code == 401 and session.json()["error"]["code"] == "missing_api_key"
    # No CSRF token needed (nor would one help): the bearer token is the credential.
    assert client.post("/v1/videos", {"prompt": "x"}).status_code == 401


def test_create_token_prints_the_token_once(alice, live_server):
    out, err = StringIO(), StringIO()
    call_command("create_token", user="alice", name="script", cap="10", stdout=out, stderr=err)
    secret = out.getvalue().strip()
    assert secret.startswith("sk-studio-") and "\n" not in secret
    assert "shown once" in err.getvalue()
    token = ApiToken.objects.get()
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest() and str(token.monthly_cap) == "10.00"
    assert sdk(live_server, secret).videos.list().data == []

    with pytest.raises(CommandError, match="No user called 'nobody'"):
        call_command("create_token", user="nobody", name="x")
    with pytest.raises(CommandError, match="--cap is an amount"):
        call_command("create_token", user="alice", name="x", cap="lots")


def test_the_rate_limit_answers_429_with_retry_after(alice, live_server, settings):
    settings.API_RATE_LIMIT, settings.API_RATE_WINDOW_SECONDS = 3, 60
    client = sdk(live_server, token_for(alice))
    for _ in range(3):
        client.videos.list()
    with pytest.raises(openai.RateLimitError) as limited:
        client.videos.list()
    assert limited.value.code == "rate_limit_exceeded"
    assert 1 <= int(limited.value.response.headers["Retry-After"]) <= 60
    sdk(live_server, token_for(alice, "another")).videos.list()  # per token: another token still goes through


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _status(url: str, secret: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {secret}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_the_rate_limit_holds_across_web_processes(alice, live_server, settings):
    """Two web processes on one database (as several gunicorn workers would be) share one count."""
    settings.API_RATE_LIMIT = 4
    port = _free_port()
    env = workers.worker_env(settings, API_RATE_LIMIT="4", API_RATE_WINDOW_SECONDS="60", DEBUG="true")
    web = workers.start("runserver", f"127.0.0.1:{port}", "--noreload", env=env)
    secret = token_for(alice)
    try:
        other = f"http://127.0.0.1:{port}/v1/videos"
        workers.wait_for(lambda: _status(other, "sk-studio-x") == 401, 30, "the second web process")
        here = f"{live_server.url}/v1/videos"
        answers = [_status(url, secret) for url in (here, other, here, other, here, other)]
    finally:
        workers.kill(web)
    assert answers == [200, 200, 200, 200, 429, 429]


def test_errors_outside_any_route_are_openai_shaped(client):
    missing = client.get("/v1/models")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_url"
    nul = client.get("/v1/videos", {"after": "video_\x00"})
    assert nul.status_code == 400 and json.loads(nul.content)["error"]["message"].startswith("Bad request")
