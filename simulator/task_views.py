"""The `task_api` protocol: a reverse/aggregator-style task API with `@char_…` mentions.

Modelled on the seed document's examples (POST /sora/generate → task_id, poll /sora/tasks/{id}).
Such APIs disagree on status words, so each task deterministically speaks one of several
vocabularies (see STATUS_VOCABULARIES); a client must normalise them. Some aggregators take a first
frame too; this one takes an optional `image_url` (a base64 image data URI) beside the prompt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
from datetime import datetime
from typing import Any

import requests
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import (
    require_safe,
)
from PIL import Image, UnidentifiedImageError

from . import assets, origins, render, signing, timing, triggers
from .auth import endpoint
from .models import FAILURE, TASK, Character, InFlightLimit, Job

MAX_PROMPT = 32000
MIN_DURATION, MAX_DURATION, DEFAULT_DURATION = 1, 25, 10
FETCH_TIMEOUT = 10
GARBAGE = "<html><body><h1>502 Bad Gateway</h1><p>gateway error</p></body></html>"
MENTION = re.compile(r"@(char_[A-Za-z0-9]+)")
DATA_URL = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,(?P<data>.*)", re.DOTALL)
MAX_IMAGE_BYTES = 10 * 1024 * 1024

# Words each vocabulary uses for (queued, in_progress, completed, failed). All of them occur in
# the wild; which one a task uses is picked by a hash of its id, so it never changes mid-task.
STATUS_VOCABULARIES: list[dict[str, str]] = [
    {timing.QUEUED: "queued", timing.IN_PROGRESS: "processing", timing.COMPLETED: "completed", timing.FAILED: "failed"},
    {
        timing.QUEUED: "pending",
        timing.IN_PROGRESS: "in_progress",
        timing.COMPLETED: "succeeded",
        timing.FAILED: "error",
    },
    {timing.QUEUED: "queued", timing.IN_PROGRESS: "processing", timing.COMPLETED: "succeeded", timing.FAILED: "error"},
]
FILE_VARIANTS = {"mp4": "video", "webp": "thumbnail"}


def vocabulary_for(task_id: str) -> dict[str, str]:
    index = hashlib.sha256(task_id.encode()).digest()[0] % len(STATUS_VOCABULARIES)
    return STATUS_VOCABULARIES[index]


def status_word(task_id: str, status: str) -> str:
    return vocabulary_for(task_id)[status]


def _error(status: int, message: str, code: str) -> JsonResponse:
    return JsonResponse({"error": {"message": message, "code": code}}, status=status)


def _unauthorized() -> JsonResponse:
    return _error(401, "Invalid or missing API key.", "invalid_api_key")


def _json_body(request: HttpRequest) -> dict[str, Any] | None:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _bad_json() -> JsonResponse:
    return _error(400, "The request body must be a JSON object.", "invalid_json")


def _name(data: dict[str, Any]) -> str | None:
    name = data.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 80:
        return None
    return name.strip()


def _duration(data: dict[str, Any]) -> int | None:
    """Whole seconds as a number (10, 10.0) or a string ("10"); None for anything else.

    JSON's `true` is an int to Python and `1e400` a float infinity (int() of it raises
    OverflowError): both are refused before any conversion."""
    value = data.get("duration", DEFAULT_DURATION)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    if isinstance(value, float) and not value.is_integer():  # also NaN and ±infinity
        return None
    try:
        duration = int(value)
    except ValueError:
        return None
    return duration if MIN_DURATION <= duration <= MAX_DURATION else None


# --- views -----------------------------------------------------------------------------------


@endpoint(["POST"], _unauthorized)
def generate(request: HttpRequest, owner: str) -> HttpResponse:
    """Start a task from {prompt, duration}; every `@char_…` in the prompt must be this key's."""
    data = _json_body(request)
    if data is None:
        return _bad_json()
    prompt = data.get("prompt")
    if not isinstance(prompt, str) or not 1 <= len(prompt) <= MAX_PROMPT:
        return _error(400, f"'prompt' is required: a string of 1 to {MAX_PROMPT} characters.", "invalid_prompt")
    duration = _duration(data)
    if duration is None:
        return _error(
            400,
            f"'duration' must be a whole number of seconds from {MIN_DURATION} to {MAX_DURATION}.",
            "invalid_duration",
        )
    first_frame = _first_frame(data.get("image_url"))
    if first_frame is False:
        return _error(400, "'image_url' must be a base64 data URL of a JPEG, PNG or WebP image.", "invalid_image")
    mentioned = list(dict.fromkeys(MENTION.findall(prompt)))
    known = set(Character.objects.filter(owner=owner, protocol=TASK, pk__in=mentioned).values_list("pk", flat=True))
    missing = [character_id for character_id in mentioned if character_id not in known]
    if missing:
        return _error(400, f"Unknown character: {', '.join('@' + m for m in missing)}.", "character_not_found")
    flags = triggers.parse(prompt)
    if flags.moderation:
        return _error(
            400, "The prompt was rejected by content moderation (simulated #moderation).", "moderation_blocked"
        )
    try:
        job, created = Job.objects.start(
            owner=owner,
            protocol=TASK,
            prompt=prompt,
            seconds=duration,
            triggers=flags,
            idempotency_key=request.headers.get("Idempotency-Key", "").strip()[:255],
            model=str(data.get("model") or "sora-2"),
            size="1280x720",
            character_ids=mentioned,
        )
    except InFlightLimit as exc:
        response = _error(
            429, f"Too many tasks in progress for this key (limit {exc.limit}). Retry shortly.", "rate_limit_exceeded"
        )
        response["Retry-After"] = "1"
        return response
    if created and first_frame:
        assets.keep_frames(job, start=first_frame)
    return JsonResponse({"task_id": job.id, "status": status_word(job.id, job.phase().status)})


def _first_frame(value: Any) -> bytes | None | bool:
    """The bytes of an `image_url` data URL (None when there is none; False when it is not a readable image)."""
    if value in (None, ""):
        return None
    match = DATA_URL.fullmatch(value) if isinstance(value, str) else None
    try:
        content = base64.b64decode(match["data"], validate=True) if match else b""
        if not content or len(content) > MAX_IMAGE_BYTES:
            return False
        with Image.open(io.BytesIO(content)) as image:
            image.verify()
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError, SyntaxError):
        return False
    return content


@endpoint(["GET"], _unauthorized)
def task(request: HttpRequest, owner: str, task_id: str) -> HttpResponse:
    """Where a task stands, in this task's status vocabulary, with signed links once done."""
    job = Job.objects.for_owner(owner, TASK).filter(pk=task_id).first()
    if job is None:
        return _error(404, f"Task '{task_id}' not found.", "task_not_found")
    if job.trigger_set.flaky and job.claim_flaky_failure():
        return _error(503, "Service temporarily unavailable (simulated #flaky).", "service_unavailable")
    if job.trigger_set.garbage:
        return HttpResponse(GARBAGE, content_type="text/html")
    phase = job.phase()
    completed = phase.status == timing.COMPLETED
    expires_at = job.expires_at(phase)
    return JsonResponse(
        {
            "task_id": job.id,
            "status": status_word(job.id, phase.status),
            "progress": phase.progress,
            "duration": job.seconds,
            "created_at": int(job.created_at.timestamp()),
            "video_url": _file_url(request, job, "mp4", expires_at) if completed else None,
            "thumbnail_url": _file_url(request, job, "webp", expires_at) if completed else None,
            "expires_at": int(expires_at.timestamp()) if expires_at else None,
            "error": FAILURE if phase.status == timing.FAILED else None,
        }
    )


def _file_url(request: HttpRequest, job: Job, extension: str, expires_at: datetime | None) -> str:
    expires = int(expires_at.timestamp()) if expires_at else 0
    path = reverse("simulator:task_file", kwargs={"task_id": job.id, "extension": extension})
    query = f"expires={expires}&signature={signing.signature(job.id, extension, expires)}"
    return request.build_absolute_uri(f"{path}?{query}")


@csrf_exempt
@login_not_required
@require_safe
def task_file(request: HttpRequest, task_id: str, extension: str) -> HttpResponse:
    """A completed task's MP4 or WebP thumbnail; the signed link itself is the credential."""
    if extension not in FILE_VARIANTS:
        return _error(404, "No such file.", "not_found")
    if not signing.is_valid(task_id, extension, request.GET.get("expires", ""), request.GET.get("signature", "")):
        return _error(403, "This link is invalid or has expired.", "link_expired")
    job = Job.objects.filter(protocol=TASK, pk=task_id).first()
    if job is None or job.phase().status != timing.COMPLETED:
        return _error(404, "No such file.", "not_found")
    variant = FILE_VARIANTS[extension]
    try:
        name = assets.ensure(job, variant)
    except render.RenderError:
        return _error(500, "The simulated renderer crashed.", "server_error")
    return FileResponse(default_storage.open(name, "rb"), content_type=assets.VARIANTS[variant].content_type)


@endpoint(["GET", "POST"], _unauthorized)
def characters(request: HttpRequest, owner: str) -> HttpResponse:
    """GET lists this key's characters; POST creates one from {video_url, name, description}."""
    if request.method == "GET":
        mine = Character.objects.filter(owner=owner, protocol=TASK)
        return JsonResponse({"characters": [found.as_task() for found in mine]})
    data = _json_body(request)
    if data is None:
        return _bad_json()
    name = _name(data)
    if name is None:
        return _error(400, "'name' is required: 1 to 80 characters.", "invalid_name")
    video_url = data.get("video_url")
    if not isinstance(video_url, str) or not video_url.startswith(("http://", "https://")):
        return _error(400, "'video_url' must be an http(s) URL.", "invalid_video_url")
    size, problem = _fetch_clip(video_url)
    if problem:
        return _error(400, problem, "video_url_unusable")
    created = Character.objects.create(
        id=Character.new_id(),
        owner=owner,
        protocol=TASK,
        name=name,
        description=str(data.get("description") or "")[:2000],
        source=video_url[:500],
        clip_bytes=size,
    )
    return JsonResponse({"character_id": created.id})


def _origin_problem(url: str) -> str:
    """Why the simulator will not fetch `url`, or "". A real provider fetches what it is given; the
    simulator fetches only clip links from the configured origins, so it is nobody's open proxy."""
    refusal = origins.refusal(url)
    if refusal == origins.AMBIGUOUS:
        return "'video_url' must be a plain http(s) link."
    if refusal:
        return "This simulator fetches clips only from the studio's own links (see SIMULATOR_FETCH_ORIGINS)."
    return ""


def _fetch_clip(url: str) -> tuple[int, str]:
    """(size, problem): download the source clip like a provider would, within limits."""
    problem = _origin_problem(url)
    if problem:
        return 0, problem
    limit = int(settings.CHARACTER_CLIP_MAX_BYTES)
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: the origin checked is the one reached
    try:
        # Never follow a redirect: it could lead anywhere, past the origin check.
        with session.get(url, timeout=FETCH_TIMEOUT, stream=True, allow_redirects=False) as response:
            if 300 <= response.status_code < 400:
                return 0, f"Fetching video_url answered a redirect (HTTP {response.status_code}); it is not followed."
            if response.status_code != 200:
                return 0, f"Fetching video_url answered HTTP {response.status_code}."
            size = 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > limit:
                    return 0, "The clip at video_url is too large."
    except requests.RequestException as exc:
        return 0, f"Could not fetch video_url ({type(exc).__name__})."
    finally:
        session.close()
    if size == 0:
        return 0, "The clip at video_url is empty."
    return size, ""


@endpoint(["POST"], _unauthorized)
def extract_character(request: HttpRequest, owner: str) -> HttpResponse:
    """A character taken from one of this key's own completed tasks: {task_id, name}."""
    data = _json_body(request)
    if data is None:
        return _bad_json()
    name = _name(data)
    if name is None:
        return _error(400, "'name' is required: 1 to 80 characters.", "invalid_name")
    task_id = data.get("task_id")
    job = Job.objects.for_owner(owner, TASK).filter(pk=task_id).first() if isinstance(task_id, str) else None
    if job is None:
        return _error(404, f"Task '{task_id}' not found for this key.", "task_not_found")
    phase = job.phase()
    if phase.status != timing.COMPLETED:
        word = status_word(job.id, phase.status)
        return _error(400, f"Task '{job.id}' is {word}; only a completed task can be used.", "task_not_completed")
    created = Character.objects.create(
        id=Character.new_id(),
        owner=owner,
        protocol=TASK,
        name=name,
        description=str(data.get("description") or "")[:2000],
        source=job.id,
    )
    return JsonResponse({"character_id": created.id})
