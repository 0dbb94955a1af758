"""Production headers: a Content-Security-Policy without inline script, HSTS and the HTTPS redirect when
configured, a clean `check --deploy`, and oversized bodies refused before they are read."""

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "studio.example.com",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_SSL_REDIRECT": "true",
}


def manage(*args, **env):
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SECURE_") and k not in PRODUCTION and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
    )


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/login/", "/", "/generations/new/", "/spending/", "/admin/"])
def test_every_page_carries_a_policy_without_inline_script(client, alice, path):
    alice.is_staff = True
    alice.save()
    client.force_login(alice)
    response = client.get(path)
    assert response.status_code == 200
    policy = directives(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]


def test_no_template_has_inline_script_style_or_eval():
    found = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        for pattern in [
            r"<script(?![^>]*\ssrc=)",
            r"\son[a-z]+=",
            r"\bhx-on",
            r"javascript:",
            r"\sstyle=",
            r"hx-trigger=\"[^\"]*\[",
            r"hx-vals=['\"]js:",
            r"<style",
        ]:
            found += [f"{template.relative_to(ROOT)}: {match.group()}" for match in re.finditer(pattern, text)]
    assert found == []


def test_htmx_runs_without_eval(client, alice):
    client.force_login(alice)
    assert '"allowEval": false' in client.get("/").text


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_warns_without_https_settings():
    env = {**PRODUCTION, "SECURE_HSTS_SECONDS": "0", "SECURE_SSL_REDIRECT": "false"}
    result = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


def test_https_settings_come_from_the_environment():
    code = (
        "from django.conf import settings as s; print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS,"
        " s.SECURE_HSTS_PRELOAD, s.SECURE_SSL_REDIRECT, s.SECURE_PROXY_SSL_HEADER, s.MAX_REQUEST_BYTES)"
    )
    result = manage(
        "shell",
        "-c",
        code,
        **PRODUCTION,
        SECURE_HSTS_PRELOAD="true",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO",
        MAX_REQUEST_BYTES="1000",
    )
    assert result.stdout.split("\n")[-2] == "31536000 True True True ('HTTP_X_FORWARDED_PROTO', 'https') 1000", (
        result.stderr
    )


@pytest.mark.django_db
def test_https_redirect_and_hsts_when_configured(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client()  # middleware reads these settings when it is built
    response = client.get("/login/")
    assert response.status_code == 301 and response["Location"] == "https://testserver/login/"

    response = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.django_db
def test_no_hsts_or_redirect_by_default():
    response = Client().get("/login/")
    assert response.status_code == 200 and "Strict-Transport-Security" not in response


# --- Request size -------------------------------------------------------------------------------


def answer_complete(answer: bytes) -> bool:
    head, blank, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"^Content-Length: (\d+)\r?$", head, re.M | re.I)
    return bool(blank and length and len(body) >= int(length.group(1)))


def raw_request(url: str, head: str, body: bytes = b"", timeout: float = 5.0) -> tuple[bytes, float]:
    """Send a request by hand over a socket; return the first bytes of the answer and how long it took."""
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        while not answer_complete(answer) and (chunk := sock.recv(4096)):
            answer += chunk
    return answer, time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_an_oversized_upload_is_refused_before_its_body_is_read(live_server, alice, settings):
    ten_gigabytes = 10 * 2**30
    head = (
        f"POST /characters/new/ HTTP/1.1\nHost: 127.0.0.1\nContent-Length: {ten_gigabytes}\n"
        "Content-Type: multipart/form-data; boundary=xyz\n"
    )
    answer, seconds = raw_request(live_server.url, head, b"--xyz\r\n")  # a few bytes of the 10 GB
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), answer
    assert "Request too large: 10.0\xa0GB sent, 51.0\xa0MB at most.".encode() in rest
    assert seconds < 2


@pytest.mark.django_db(transaction=True)
def test_a_body_without_a_length_is_refused(live_server):
    head = "POST /login/ HTTP/1.1\nHost: 127.0.0.1\nTransfer-Encoding: chunked\nContent-Type: text/plain\n"
    answer, _ = raw_request(live_server.url, head, b"5\r\nhello\r\n")
    assert answer.startswith(b"HTTP/1.1 411"), answer


@pytest.mark.django_db
def test_a_body_under_the_limit_goes_through(client, settings):
    settings.MAX_REQUEST_BYTES = 1000
    assert client.post("/login/", {"username": "x" * 100, "password": "y"}).status_code == 200
    response = client.post("/login/", {"username": "x" * 2000, "password": "y"})
    assert response.status_code == 413 and "1000\xa0bytes at most" in response.text
