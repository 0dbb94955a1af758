"""The `fal_queue` protocol: fal's queue API, as the `fal-client` package speaks it.

Reference: https://fal.ai/docs/documentation/model-apis/inference/queue and, for the exact wire shape,
`fal_client/client.py` in the installed SDK (SyncClient.submit, SyncRequestHandle, _parse_status).

    POST {base}/{app_id}                                   → {request_id, response_url, status_url, cancel_url}
    GET  {base}/{owner}/{alias}/requests/{id}/status       → 202 IN_QUEUE (+queue_position) / IN_PROGRESS, 200 COMPLETED
    GET  {base}/{owner}/{alias}/requests/{id}              → the app's output, {"video": {"url": …}} for Kling
    PUT  {base}/{owner}/{alias}/requests/{id}/cancel       → 202 CANCELLATION_REQUESTED, 400 ALREADY_COMPLETED

The status, result and cancel URLs use only `owner/alias` of the app id (the endpoint path is dropped).
The key is presented as `Authorization: Key <key>`. A model error (a content-policy refusal, a failed
render) is a COMPLETED request whose result URL answers 422 `{"detail": [{loc, msg, type, …}]}`; input
the app refuses at submission is a 422 in the same shape. The video lives on a file host with public,
unguessable links (fal's CDN); here it is served under /simulator/fal-media/, or from
SIMULATOR_FAL_MEDIA_URL when set, so tests can put it on another origin.

A submit with `?fal_webhook=<url>` is called back when the request ends, signed with ED25519 by the key
published at {base}/.well-known/jwks.json (callbacks.py); only URLs on SIMULATOR_FETCH_ORIGINS are called.

Known apps: Kling text-to-video and image-to-video (`fal-ai/kling-video/<version>/<tier>/…`), with the
arguments fal lists for them (duration "5"/"10" as a string, aspect_ratio 16:9, 9:16 or 1:1).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import re
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from PIL import Image, UnidentifiedImageError

from . import assets, callbacks, render, timing, triggers
from .auth import endpoint
from .models import FAL, InFlightLimit, Job

KLING_APP = re.compile(r"fal-ai/kling-video/[A-Za-z0-9._-]+/[A-Za-z0-9._-]+/(text-to-video|image-to-video)")
DURATIONS = ("5", "10")
ASPECT_RATIOS = {"16:9": "1920x1080", "9:16": "1080x1920", "1:1": "1080x1080"}
MAX_PROMPT = 2500
MAX_IMAGE_BYTES = 10 * 1024 * 1024
# Arguments of fal apps that carry an image, as a URL or a base64 data URI; the first two are a first frame,
# the last two a last frame (Kling's `tail_image_url`).
IMAGE_ARGUMENTS = ("image_url", "start_image_url", "end_image_url", "tail_image_url")
FRAME_OF = {"image_url": "start", "start_image_url": "start", "end_image_url": "end", "tail_image_url": "end"}
DATA_URI = re.compile(r"data:(?P<type>image/[A-Za-z0-9.+-]+);base64,(?P<data>.*)", re.DOTALL)
GARBAGE = "<html><body><h1>502 Bad Gateway</h1><p>gateway error</p></body></html>"
MODERATED = {
    "loc": ["body", "prompt"],
    "msg": "The content was flagged by a content checker (simulated #moderation).",
    "type": "content_policy_violation",
    "url": "https://docs.fal.ai/errors#content_policy_violation",
    "categories": ["violence"],
}
FAILED = {
    "loc": ["body"],
    "msg": "The simulated renderer failed halfway through.",
    "type": "generation_failed",
}


class Unprocessable(Exception):
    """A 422 in fal's (FastAPI's) validation shape, about one argument."""

    def __init__(self, loc: list[str], msg: str, type: str, value: Any = None) -> None:
        super().__init__(msg)
        self.detail = {"loc": loc, "msg": msg, "type": type}
        if value is not None:
            self.detail["input"] = value if isinstance(value, (int, float, bool)) else str(value)[:100]


def _detail(status: int, detail: Any, **headers: str) -> JsonResponse:
    response = JsonResponse({"detail": detail}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _unauthorized() -> JsonResponse:
    # Never echo the key back, not even masked: error bodies end up in logs.
    return _detail(401, "No user found for Key ID and Secret")


def _not_found(request_id: str) -> JsonResponse:
    return _detail(404, f"Request {request_id[:80]} not found")


# --- submit ----------------------------------------------------------------------------------------


@endpoint(["POST"], _unauthorized, scheme="key")
def submit(request: HttpRequest, owner: str, app_id: str) -> HttpResponse:
    """Queue a request for a model app; the app's own arguments are the JSON body."""
    app = KLING_APP.fullmatch(app_id)
    if app is None or len(app_id) > 100:
        return _detail(404, f"Application '{app_id[:100]}' not found")
    try:
        arguments = _json_object(request)
        prompt = _prompt(arguments)
        duration = _choice(arguments, "duration", DURATIONS, default="5")
        images, frames = _images(arguments, required="image_url" if app.group(1) == "image-to-video" else None)
        if app.group(1) == "text-to-video":
            size = ASPECT_RATIOS[_choice(arguments, "aspect_ratio", tuple(ASPECT_RATIOS), default="16:9")]
        else:
            size = images[0][1] if images and images[0][1] else "1920x1080"
        recorded = _recorded(arguments)
        webhook = _webhook(request)
    except Unprocessable as exc:
        return _detail(422, [exc.detail])
    flags = triggers.parse(prompt)
    try:
        job, created = Job.objects.start(
            owner=owner,
            protocol=FAL,
            prompt=prompt,
            seconds=int(duration),
            triggers=flags,
            model=app_id,
            size=size,
            request=recorded,
            images=[name for name, _ in images],
            webhook=webhook,
        )
    except InFlightLimit as exc:
        return _detail(429, f"Too many concurrent requests for this key (limit {exc.limit}).", Retry_After="1")
    if created and frames:
        assets.keep_frames(job, start=frames.get("start"), end=frames.get("end"))
    if created:
        callbacks.schedule(job, lambda job: job.phase().is_terminal, partial(_callback, callbacks.Site(request)))
    return JsonResponse({**_urls(request, job), "status": "IN_QUEUE", "queue_position": _queue_position(job)})


def _webhook(request: HttpRequest) -> str:
    """`?fal_webhook=`: where to POST the result when the request ends ("" for none)."""
    url = request.GET.get("fal_webhook", "")
    if url and (len(url) > 500 or not url.startswith(("http://", "https://"))):
        raise Unprocessable(["query", "fal_webhook"], "Input should be a valid http(s) URL", "url_parsing", url)
    return url


def _callback(site: callbacks.Site, job: Job) -> tuple[bytes, dict[str, str]]:
    """fal's delivery: `{request_id, status: OK, payload: <the result>}`, or `status: ERROR` with the error
    the result URL answers; signed with ED25519 for the key's user id (a fresh timestamp each attempt)."""
    body: dict[str, Any] = {"request_id": job.id, "gateway_request_id": job.id}
    failure = _failure(job, job.phase())
    if failure:
        body.update(status="ERROR", error="Invalid status code: 422", payload={"detail": [failure]})
    else:
        video = {"url": _media_url(site, job), "content_type": "video/mp4", "file_name": "output.mp4"}
        body.update(status="OK", payload={"video": video})
    raw = json.dumps(body).encode()
    return raw, callbacks.fal_headers(job.id, job.owner, raw)


@csrf_exempt
@login_not_required
@require_safe
def jwks(request: HttpRequest) -> HttpResponse:
    """The public keys callbacks are signed with, as a JWKS (public, like fal's own)."""
    return JsonResponse(callbacks.fal_jwks())


def _json_object(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise Unprocessable(["body"], "JSON decode error", "json_invalid") from exc
    if not isinstance(data, dict):
        raise Unprocessable(["body"], "Input should be a valid dictionary", "dict_type")
    return data


def _prompt(arguments: dict[str, Any]) -> str:
    prompt = arguments.get("prompt")
    if prompt is None:
        raise Unprocessable(["body", "prompt"], "Field required", "missing")
    if not isinstance(prompt, str):
        raise Unprocessable(["body", "prompt"], "Input should be a valid string", "string_type", prompt)
    if not prompt.strip() or len(prompt) > MAX_PROMPT:
        kind = "string_too_short" if not prompt.strip() else "string_too_long"
        raise Unprocessable(["body", "prompt"], f"The prompt must be 1 to {MAX_PROMPT} characters.", kind)
    return prompt


def _choice(arguments: dict[str, Any], name: str, allowed: tuple[str, ...], *, default: str) -> str:
    """An enum argument: one of the strings fal lists (Kling takes duration "5", not 5)."""
    value = arguments.get(name, default)
    if not isinstance(value, str) or value not in allowed:
        options = " or ".join(f"'{option}'" for option in allowed)
        shown = value if isinstance(value, str) else json.dumps(value) if _finite(value) else str(value)
        raise Unprocessable(["body", name], f"Input should be {options}", "enum", shown)
    return value


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _images(arguments: dict[str, Any], *, required: str | None) -> tuple[list[tuple[str, str]], dict[str, bytes]]:
    """(name, size) of every image argument sent, and the first and last frames given inline ({"start", "end"}:
    bytes); a data URI must hold a real image."""
    if required and not arguments.get(required):
        raise Unprocessable(["body", required], "Field required", "missing")
    found, frames = [], {}
    for name in IMAGE_ARGUMENTS:
        value = arguments.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise Unprocessable(["body", name], "Input should be a valid URL or data URI", "url_type")
        if value.startswith(("http://", "https://")):
            # Not fetched: the simulator is nobody's open proxy. Its file name is what is remembered.
            found.append((value.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1][:100] or name, ""))
            continue
        described, size, content = _data_uri_image(name, value)
        found.append((described, size))
        frames.setdefault(FRAME_OF[name], content)
    return found, frames


def _data_uri_image(name: str, value: str) -> tuple[str, str, bytes]:
    match = DATA_URI.fullmatch(value)
    if match is None:
        raise Unprocessable(["body", name], "Input should be a valid URL or base64 image data URI", "url_parsing")
    try:
        content = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Unprocessable(["body", name], "The data URI is not valid base64.", "image_load_error") from exc
    if not content or len(content) > MAX_IMAGE_BYTES:
        raise Unprocessable(["body", name], "The image must be 1 byte to 10 MB.", "image_too_large")
    try:
        with Image.open(io.BytesIO(content)) as image:
            width, height = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise Unprocessable(
            ["body", name], "Could not load the image: it is not a JPEG, PNG or WebP.", "image_load_error"
        ) from exc
    return f"{name} ({match['type']}, {len(content)} bytes)", f"{width}x{height}", content


def _recorded(arguments: dict[str, Any]) -> dict[str, Any]:
    """What was sent beside the prompt, with images replaced by a short description (no megabytes in the DB)."""
    recorded = {}
    for name, value in arguments.items():
        if name == "prompt":
            continue
        if name in IMAGE_ARGUMENTS and isinstance(value, str) and value.startswith("data:"):
            value = value[: value.find(",") + 1] + "…"
        elif not _json_safe(value):
            raise Unprocessable(["body", name], "Input should be a finite number", "finite_number", str(value))
        recorded[name] = value
    if "negative_prompt" in recorded and not isinstance(recorded["negative_prompt"], str):
        raise Unprocessable(["body", "negative_prompt"], "Input should be a valid string", "string_type")
    if "cfg_scale" in recorded:
        scale = recorded["cfg_scale"]
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale <= 1:
            raise Unprocessable(["body", "cfg_scale"], "Input should be a number from 0 to 1", "less_than_equal", scale)
    return recorded


def _json_safe(value: Any) -> bool:
    """False for infinities and NaN anywhere in the value (1e400 parses as inf; the DB cannot store it)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_safe(item) for item in value)
    if isinstance(value, dict):
        return all(_json_safe(item) for item in value.values())
    return True


# --- status, result, cancel -----------------------------------------------------------------------


def _app_root(app_id: str) -> tuple[str, str]:
    owner, alias = app_id.split("/")[:2]
    return owner, alias


def _urls(request: HttpRequest, job: Job) -> dict[str, str]:
    owner, alias = _app_root(job.model)
    kwargs = {"app_owner": owner, "alias": alias, "request_id": job.id}
    return {
        "request_id": job.id,
        "response_url": request.build_absolute_uri(reverse("simulator:fal_result", kwargs=kwargs)),
        "status_url": request.build_absolute_uri(reverse("simulator:fal_status", kwargs=kwargs)),
        "cancel_url": request.build_absolute_uri(reverse("simulator:fal_cancel", kwargs=kwargs)),
    }


def _get_job(owner: str, app_owner: str, alias: str, request_id: str) -> Job | None:
    job = Job.objects.for_owner(owner, FAL).filter(pk=request_id).first()
    # A request is found only under its own app's owner/alias, as on fal.
    return job if job is not None and _app_root(job.model) == (app_owner, alias) else None


def _queue_position(job: Job) -> int:
    """How many of this key's requests wait ahead of this one (0-indexed, like fal's)."""
    now = timezone.now()
    waiting = Job.objects.for_owner(job.owner, FAL).in_flight(now).filter(created_at__lt=job.created_at)
    return sum(1 for other in waiting if other.phase(now).status == timing.QUEUED)


def _logs(job: Job, phase: timing.Phase) -> list[dict[str, Any]]:
    started = job.created_at + job.duration * timing.QUEUED_SHARE
    return [
        {
            "message": f"Generating video: {phase.progress}%",
            "level": "INFO",
            "source": "user",
            "timestamp": _iso(max(started, job.created_at)),
        }
    ]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@endpoint(["GET"], _unauthorized, scheme="key")
def status(request: HttpRequest, owner: str, app_owner: str, alias: str, request_id: str) -> HttpResponse:
    """Where a request stands; logs (with the renderer's progress) when asked for with ?logs=1."""
    job = _get_job(owner, app_owner, alias, request_id)
    if job is None:
        return _not_found(request_id)
    if job.trigger_set.flaky and job.claim_flaky_failure():
        return _detail(
            503, "No runner could be allocated (simulated #flaky).", X_Fal_Error_Type="runner_scheduling_failure"
        )
    if job.trigger_set.garbage:
        return HttpResponse(GARBAGE, content_type="text/html")
    with_logs = request.GET.get("logs", "").lower() in ("1", "true")
    phase = job.phase()
    body: dict[str, Any] = _urls(request, job)
    if phase.status == timing.QUEUED:
        # fal-client reads queue_position from every IN_QUEUE answer; without it the SDK breaks.
        return JsonResponse(
            {**body, "status": "IN_QUEUE", "queue_position": _queue_position(job), "logs": None}, status=202
        )
    if phase.status == timing.IN_PROGRESS:
        logs = _logs(job, phase) if with_logs else None
        return JsonResponse({**body, "status": "IN_PROGRESS", "logs": logs}, status=202)
    body.update(
        status="COMPLETED",
        logs=_logs(job, phase) if with_logs else None,
        metrics={"inference_time": round((phase.finished_at - job.created_at).total_seconds(), 3)},
    )
    failure = _failure(job, phase)
    if failure:
        body.update(error=failure["msg"], error_type=failure["type"])
    return JsonResponse(body)


def _failure(job: Job, phase: timing.Phase) -> dict[str, Any] | None:
    if job.trigger_set.moderation:
        return {**MODERATED, "input": job.prompt[:200]}
    if phase.status == timing.FAILED:
        return FAILED
    return None


@endpoint(["GET"], _unauthorized, scheme="key")
def result(request: HttpRequest, owner: str, app_owner: str, alias: str, request_id: str) -> HttpResponse:
    """The app's output once COMPLETED: Kling's `{"video": File}`, or the model's error as a 422."""
    job = _get_job(owner, app_owner, alias, request_id)
    if job is None:
        return _not_found(request_id)
    phase = job.phase()
    if not phase.is_terminal:
        return _detail(400, "Request is still in progress")
    failure = _failure(job, phase)
    if failure:
        return _detail(422, [failure], X_Fal_Error_Type=failure["type"])
    try:
        name = assets.ensure(job, "video")
    except render.RenderError:
        return _detail(500, "The simulated renderer crashed.", X_Fal_Error_Type="internal_error")
    return JsonResponse(
        {
            "video": {
                "url": _media_url(request, job),
                "content_type": "video/mp4",
                "file_name": "output.mp4",
                "file_size": default_storage.size(name),
            }
        }
    )


def _media_url(request: HttpRequest, job: Job) -> str:
    path = reverse("simulator:fal_media", kwargs={"request_id": job.id})
    base = str(getattr(settings, "SIMULATOR_FAL_MEDIA_URL", "") or "").rstrip("/")
    return f"{base}{path}" if base else request.build_absolute_uri(path)


@endpoint(["PUT"], _unauthorized, scheme="key")
def cancel(request: HttpRequest, owner: str, app_owner: str, alias: str, request_id: str) -> HttpResponse:
    """Ask to cancel: a request that has finished cannot be; one that has not is ended as failed."""
    job = _get_job(owner, app_owner, alias, request_id)
    if job is None:
        return JsonResponse({"status": "NOT_FOUND"}, status=404)
    if job.phase().is_terminal:
        return JsonResponse({"status": "ALREADY_COMPLETED"}, status=400)
    # The clock decides a job's fate; a cancelled one ends now, failed, and frees its slot.
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        triggers=f"{job.triggers} fail".strip(), duration=now - job.created_at, finishes_at=now
    )
    return JsonResponse({"status": "CANCELLATION_REQUESTED"}, status=202)


@csrf_exempt
@login_not_required
@require_safe
def media(request: HttpRequest, request_id: str) -> HttpResponse:
    """The file host: a completed request's MP4 behind a public, unguessable link (no key, like fal's CDN)."""
    job = Job.objects.filter(protocol=FAL, pk=request_id).first()
    if job is None:
        return _detail(404, "File not found")
    phase = job.phase()
    expires_at = job.expires_at(phase)
    if phase.status != timing.COMPLETED or job.trigger_set.moderation or (expires_at and timezone.now() > expires_at):
        return _detail(404, "File not found")
    try:
        name = assets.ensure(job, "video")
    except render.RenderError:
        return _detail(500, "The simulated renderer crashed.")
    return FileResponse(default_storage.open(name, "rb"), content_type="video/mp4")
