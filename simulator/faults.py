"""Fault mode: the simulated provider fails a share of its calls at random, the ways real providers do.

Off unless SIMULATOR_FAULT_RATE > 0 (0.2: one call in five fails). Every endpoint of every protocol goes
through `injecting` (urls.py wraps them all), and each injected fault is written to the books (models.Fault).
The kinds, drawn evenly from SIMULATOR_FAULT_KINDS (all of them by default):

- `server_error`: 500 before the call is served (nothing is created).
- `rate_limited`: 429 with `Retry-After: SIMULATOR_FAULT_RETRY_AFTER` before the call is served.
- `timeout`: the call is served (a create is recorded and billed), then the answer is held for
  SIMULATOR_FAULT_DELAY seconds, past the client's read timeout: the provider accepted, the client never knew.
- `malformed`: the call is served, then answered 200 with a body cut in half (not JSON). A file download
  cannot be malformed JSON, so there the answer is cut short instead (counted as a `reset`).
- `reset`: the connection breaks. Half the time before the call is served (the client reads no answer at
  all: nothing was created), half the time after, in the middle of the answer (its Content-Length promised
  more than is sent before the socket closes: the job exists, the client cannot read it).

Breaking the exchange for real needs the client's socket. Django's development server (runserver, the tests'
live_server) keeps it behind `wsgi.input`; gunicorn puts it in the environ as `gunicorn.socket`. Shutting it
down makes `requests` raise ConnectionError (no answer) or ChunkedEncodingError (an answer cut short). Under a
server that exposes no socket, a reset is answered 502, as a proxy in front of a broken upstream would.

SIMULATOR_FAULT_SEED makes the draws repeatable (the order in which concurrent calls draw still varies).
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from .auth import owner_from
from .models import FAL, OPENAI, REPLICATE, RUNWAY, TASK, VEO, Fault

SERVER_ERROR, RATE_LIMITED, TIMEOUT, MALFORMED, RESET = "server_error", "rate_limited", "timeout", "malformed", "reset"
KINDS = (SERVER_ERROR, RATE_LIMITED, TIMEOUT, MALFORMED, RESET)
# Kinds that always strike before the call is served, and those that always strike after; a reset does either.
BEFORE_ONLY = {SERVER_ERROR, RATE_LIMITED}
AFTER_ONLY = {TIMEOUT, MALFORMED}
# The endpoints (URL names) that start a video: a fault there may cost a job or hide one.
CREATES = {
    "openai_videos",
    "openai_remix",
    "task_generate",
    "veo_predict",
    "replicate_create",
    "runway_text_to_video",
    "runway_image_to_video",
    "fal_submit",
}
_PROTOCOL_OF_PREFIX = {"openai": OPENAI, "task": TASK, "veo": VEO, "replicate": REPLICATE, "runway": RUNWAY, "fal": FAL}
_KEY_SCHEMES = ("bearer", "key", "token", "goog")


@dataclass(frozen=True)
class Plan:
    kind: str
    moment: str  # Fault.BEFORE or Fault.AFTER


class _Dice:
    """One random generator for the whole process, re-seeded when SIMULATOR_FAULT_SEED changes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seed: object = object()
        self.rng = random.Random()

    def draw(self, rate: float, kinds: list[str]) -> Plan | None:
        seed = getattr(settings, "SIMULATOR_FAULT_SEED", None)
        with self.lock:
            if seed != self.seed:
                self.seed, self.rng = seed, random.Random(seed)
            if self.rng.random() >= rate:
                return None
            kind = self.rng.choice(kinds)
            early = self.rng.random() < 0.5
        if kind in BEFORE_ONLY or (kind not in AFTER_ONLY and early):
            return Plan(kind, Fault.BEFORE)
        return Plan(kind, Fault.AFTER)


_dice = _Dice()


def plan() -> Plan | None:
    """Whether this call fails, and how; None when fault mode is off or the dice say no."""
    rate = float(getattr(settings, "SIMULATOR_FAULT_RATE", 0) or 0)
    if rate <= 0:
        return None
    kinds = [kind for kind in (getattr(settings, "SIMULATOR_FAULT_KINDS", None) or KINDS) if kind in KINDS]
    return _dice.draw(min(rate, 1.0), kinds or list(KINDS))


def inject(urlpatterns: list) -> list:
    """Route every one of these endpoints through `injecting` (they keep their names and decorators)."""
    for pattern in urlpatterns:
        pattern.callback = injecting(pattern.callback, pattern.name)
    return urlpatterns


def injecting(view, endpoint: str):
    """`view`, failing a share of its calls when fault mode is on."""
    protocol = _PROTOCOL_OF_PREFIX.get(endpoint.partition("_")[0], "")

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        chosen = plan()
        if chosen is None:
            return view(request, *args, **kwargs)
        fault = Fault(
            kind=chosen.kind,
            moment=chosen.moment,
            protocol=protocol,
            endpoint=endpoint,
            method=request.method or "",
            is_create=request.method == "POST" and endpoint in CREATES,
            owner=_owner(request),
        )
        if chosen.moment == Fault.BEFORE:
            fault.save()
            return _before(chosen.kind, request)
        response = view(request, *args, **kwargs)
        if chosen.kind == MALFORMED and "json" not in response.get("Content-Type", ""):
            fault.kind = RESET  # a file download cannot be malformed JSON: it is cut short instead
        fault.save()
        return _after(fault.kind, request, response)

    return wrapped


def _owner(request: HttpRequest) -> str:
    for scheme in _KEY_SCHEMES:
        owner = owner_from(request, scheme)
        if owner:
            return owner
    return ""


# --- the faults --------------------------------------------------------------------------------


def _before(kind: str, request: HttpRequest) -> HttpResponse:
    if kind == SERVER_ERROR:
        return _error(500, "The simulated provider failed (fault mode).", "server_error")
    if kind == RATE_LIMITED:
        response = _error(429, "Slow down: too many requests (fault mode).", "rate_limit_exceeded")
        response["Retry-After"] = str(getattr(settings, "SIMULATOR_FAULT_RETRY_AFTER", 1))
        return response
    return _hang_up(request)


def _after(kind: str, request: HttpRequest, response: HttpResponse) -> HttpResponse:
    if kind == TIMEOUT:
        # The job is made; the answer comes too late for the client, which has given up on it.
        time.sleep(float(getattr(settings, "SIMULATOR_FAULT_DELAY", 35)))
        return response
    if kind == MALFORMED:
        return _malformed(response)
    return _cut_short(request, response)


def _error(status: int, message: str, code: str) -> HttpResponse:
    # The shape most of the six protocols use; a failing gateway in front of a provider sends what it likes.
    body = {"error": {"message": message, "type": "server_error", "code": code}}
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")


def _body(response: HttpResponse) -> bytes:
    """The whole body of an answer (streamed ones too: a simulated file is small), closing it."""
    try:
        return b"".join(response.streaming_content) if response.streaming else response.content
    finally:
        response.close()


def _copy_headers(source: HttpResponse, target: HttpResponse) -> HttpResponse:
    for name, value in source.items():
        if name.lower() != "content-length":
            target[name] = value
    return target


def _malformed(response: HttpResponse) -> HttpResponse:
    """200 (or the answer's own 2xx), with the JSON cut in half: `{"id": "video_…", "sta`."""
    body = _body(response)
    status = response.status_code if 200 <= response.status_code < 300 else 200
    return _copy_headers(response, HttpResponse(body[: len(body) // 2] or b"{", status=status))


def _hang_up(request: HttpRequest) -> HttpResponse:
    """Close the connection without an answer; the 502 below is what a server with no socket to close sends."""
    connection = client_socket(request.environ)
    if connection is not None:
        _shutdown(connection)
    return _error(502, "The connection to the simulated provider broke (fault mode).", "connection_reset")


def _cut_short(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """The answer's headers and the first half of its body, then the connection closes: the Content-Length
    promised more than arrived."""
    body = _body(response)
    connection = client_socket(request.environ)
    if connection is None or len(body) < 2:
        return _hang_up(request)

    def half_then_close():
        yield body[: len(body) // 2]
        _shutdown(connection)  # the server wrote (and flushed) the first half before asking for more

    cut = _copy_headers(response, StreamingHttpResponse(half_then_close(), status=response.status_code))
    cut["Content-Length"] = str(len(body))
    return cut


def client_socket(environ: dict) -> socket.socket | None:
    """The client's socket: gunicorn's `gunicorn.socket`, or, under Django's development server, the one its
    request handler reads `wsgi.input` from (a LimitedStream over a buffered reader over a SocketIO)."""
    found = environ.get("gunicorn.socket")
    if isinstance(found, socket.socket):
        return found
    stream = environ.get("wsgi.input")
    reader = getattr(getattr(stream, "_read", None), "__self__", None)
    found = getattr(getattr(reader, "raw", None), "_sock", None)
    return found if isinstance(found, socket.socket) else None


def _shutdown(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # the client went away first
