"""Helpers the gateway tests share: a token, an `openai` client on the live server, a pump running beside it."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager

import openai
from django.db import connection

log = logging.getLogger(__name__)


def token_for(user, name="tests", **fields) -> str:
    """A new API token of `user`: its secret."""
    from generations.gateway import tokens

    _, secret = tokens.issue(user, name, **fields)
    return secret


def sdk(live_server, secret: str, **options) -> openai.OpenAI:
    """The official client, pointed at the studio's /v1/ API; no retries unless asked, so every answer is seen."""
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=secret, **{"max_retries": 0, **options})


@contextmanager
def pump_running(interval: float = 0.05):
    """The pump ticking in a thread, as qcluster would run it, while the test thread plays the client."""
    from generations.jobs import pump

    stop = threading.Event()

    def run():
        try:
            while not stop.is_set():
                try:
                    pump.tick()
                except Exception:  # keep pumping, like a worker would; the test sees the job stuck
                    log.exception("pump tick failed")
                time.sleep(interval)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
