"""The production profile (`make prod`): Procfile.prod's gunicorn serves the studio with DEBUG off, and
whitenoise serves the collected static files, compressed, under hashed names cached for a year."""

import re
import secrets
import socket
import subprocess
import sys

import pytest
import requests

from tests import workers

pytestmark = pytest.mark.django_db(transaction=True)


def procfile_line(name: str) -> str:
    for line in (workers.ROOT / "Procfile.prod").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.removeprefix(f"{name}:").strip()
    raise AssertionError(f"Procfile.prod has no {name} process")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_make_run_and_make_prod_start_web_and_worker():
    assert procfile_line("worker") == ".venv/bin/python manage.py qcluster"
    assert procfile_line("web").startswith(".venv/bin/gunicorn sora_studio.wsgi ")
    makefile = (workers.ROOT / "Makefile").read_text()
    assert "honcho -f Procfile.prod start" in makefile and "collectstatic --noinput" in makefile
    # `make run` keeps the development server: the Procfile it starts names no production process.
    assert "gunicorn" not in (workers.ROOT / "Procfile").read_text()


def test_gunicorn_serves_pages_and_whitenoise_the_static_files(settings, tmp_path):
    port = free_port()
    env = workers.worker_env(
        settings,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1",
        STATIC_ROOT=str(tmp_path / "static"),
        WEB_BIND=f"127.0.0.1:{port}",
        WEB_WORKERS="2",
    )
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=workers.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collected.returncode == 0, collected.stderr
    command = procfile_line("web").replace(".venv/bin/gunicorn", f"{sys.executable} -m gunicorn")
    web = subprocess.Popen(
        ["sh", "-c", command],
        cwd=workers.ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        workers.wait_for(lambda: _answers(f"{base}/login/"), timeout=60, what="gunicorn to answer")
        login = requests.get(f"{base}/login/", timeout=10)
        assert login.status_code == 200 and "Log in" in login.text
        assert "Content-Security-Policy" in login.headers
        assert requests.get(f"{base}/simulator/openai/v1/videos", timeout=10).status_code == 404  # DEBUG off
        # The page names its stylesheet by a hashed name; whitenoise serves it compressed and cached for good.
        stylesheet = re.search(r'href="(/static/generations/studio\.[0-9a-f]{12}\.css)"', login.text)
        assert stylesheet, login.text[:500]
        css = requests.get(f"{base}{stylesheet.group(1)}", headers={"Accept-Encoding": "gzip"}, timeout=10)
        assert css.status_code == 200 and css.headers["Content-Encoding"] == "gzip"
        assert "immutable" in css.headers["Cache-Control"] and "max-age=315360000" in css.headers["Cache-Control"]
        assert ".topbar" in css.text
    finally:
        workers.kill(web)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except requests.RequestException:
        return False
