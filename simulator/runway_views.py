"""The `runway` protocol: Runway's API as the official `runwayml` package speaks it.

Reference: https://docs.dev.runwayml.com/api/ and, for the exact wire shape, the installed SDK
(runwayml 5.24: `resources/{text_to_video,image_to_video,tasks}.py`, `types/task_retrieve_response.py`).
The SDK's base URL is the host (`https://api.dev.runwayml.com`) and its paths start with `/v1/`;
every request carries `Authorization: Bearer <key>` and `X-Runway-Version: 2024-11-06`.

- create answers 200 `{id, estimatedCost}`; a task is PENDING (THROTTLED while another of the key's
  tasks holds its slot), RUNNING with `progress` 0-1, then SUCCEEDED with `output: [url]` (a CDN link
  that needs no key and expires; every poll hands out a fresh one) or FAILED with `failure` and
  `failureCode`. A moderation refusal is a FAILED task with `failureCode: SAFETY.INPUT.TEXT`.
- `DELETE /v1/tasks/{id}` cancels or deletes a task: 204, and it cannot be fetched again.
- Errors are `{"error": "..."}`; a body that fails validation adds `issues: [{path, message}]`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from PIL import Image, UnidentifiedImageError

from . import assets, render, signing, timing, triggers
from .auth import endpoint
from .models import RUNWAY, InFlightLimit, Job

VERSION = "2024-11-06"
MAX_PROMPT = 1000  # UTF-16 code units, as Runway counts them
MAX_DATA_URI = 5 * 1024 * 1024
URL_TTL = timedelta(hours=24)  # Runway's output links last 24-48 h; fetch the task again for fresh ones
GARBAGE = "<html><body><h1>502 Bad Gateway</h1><p>cloudfront</p></body></html>"
# Not Runway's prices: a simulated figure so `estimatedCost` and `cost` have the shape the SDK expects.
CREDITS_PER_SECOND = 10
FAILURE = ("An unexpected error occurred while generating (simulated #fail).", "INTERNAL.BAD_OUTPUT.CODE01")
MODERATED = ("The prompt did not pass content moderation (simulated #moderation).", "SAFETY.INPUT.TEXT")
_DATA_URI = re.compile(r"data:(image/(?:png|jpeg|jpg|webp));base64,(.*)", re.DOTALL)


class Model:
    def __init__(
        self,
        durations: range | tuple[int, ...],
        default: int | None,
        text_ratios: set[str],
        image_ratios: set[str],
        positions: set[str],
        needs_image: bool = False,
    ) -> None:
        self.durations, self.default = durations, default
        self.text_ratios, self.image_ratios, self.positions = text_ratios, image_ratios, positions
        self.needs_image = needs_image


_WIDE, _VEO = {"1280:720", "720:1280"}, {"1280:720", "720:1280", "1080:1920", "1920:1080"}
_GEN4_IMAGE = _WIDE | {"1104:832", "960:960", "832:1104", "1584:672"}
# The models the simulator renders, with the durations and ratios the SDK's types allow them.
MODELS = {
    "gen4.5": Model(range(2, 11), None, _WIDE, _GEN4_IMAGE, {"first"}),
    "gen4_turbo": Model(range(2, 11), 10, set(), _GEN4_IMAGE, {"first"}, needs_image=True),
    "veo3.1": Model((4, 6, 8), 8, _VEO, _VEO, {"first", "last"}),
    "veo3.1_fast": Model((4, 6, 8), 8, _VEO, _VEO, {"first", "last"}),
}


class Invalid(Exception):
    """A body that fails validation: Runway's 400 with the issues found."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


def _error(status: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _unauthorized() -> JsonResponse:
    return _error(401, "Invalid API secret. Check that the Authorization header carries a valid API key.")


def _invalid(exc: Invalid) -> JsonResponse:
    path = [exc.path] if exc.path else []
    return _error(400, "Validation of body failed", issues=[{"path": path, "message": exc.message}])


def _version_problem(request: HttpRequest) -> JsonResponse | None:
    """Runway refuses a request that does not say which API version it speaks."""
    version = request.headers.get("X-Runway-Version", "")
    if not version:
        return _error(400, f"The X-Runway-Version header is required; the current version is {VERSION}.")
    if version != VERSION:
        return _error(400, f"Unsupported X-Runway-Version {version[:40]!r}; the current version is {VERSION}.")
    return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- request parsing -------------------------------------------------------------------------


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        raise Invalid("", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise Invalid("", "Expected an object, received something else.")
    return data


def _model(data: dict[str, Any]) -> tuple[str, Model]:
    name = data.get("model")
    if not isinstance(name, str) or name not in MODELS:
        raise Invalid("model", f"Invalid option: expected one of {', '.join(repr(m) for m in MODELS)}.")
    return name, MODELS[name]


def _prompt(data: dict[str, Any], required: bool) -> str:
    prompt = data.get("promptText")
    if prompt is None and not required:
        return ""
    if not isinstance(prompt, str) or not prompt.strip():
        raise Invalid("promptText", "Required: a non-empty string.")
    if len(prompt.encode("utf-16-le")) // 2 > MAX_PROMPT:
        raise Invalid("promptText", f"Too big: expected string to have <={MAX_PROMPT} characters.")
    return prompt


def _duration(data: dict[str, Any], model: Model) -> int:
    """A whole number of seconds the model allows. JSON's `true` is an int to Python and `1e400` a float
    infinity: both are refused before any conversion."""
    value = data.get("duration")
    if value is None and model.default is not None:
        return model.default
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or isinstance(value, float)
        and not (value.is_integer())
    ):
        raise Invalid("duration", "Invalid input: expected an integer number of seconds.")
    duration = int(value)
    if duration not in model.durations:
        allowed = ", ".join(str(d) for d in model.durations)
        raise Invalid("duration", f"Invalid option: this model makes videos of {allowed} seconds.")
    return duration


def _ratio(data: dict[str, Any], allowed: set[str]) -> str:
    ratio = data.get("ratio")
    if not isinstance(ratio, str) or ratio not in allowed:
        raise Invalid("ratio", f"Invalid option: expected one of {', '.join(sorted(allowed))}.")
    return ratio


def _image_name(uri: Any, path: str) -> tuple[str, bytes | None]:
    """Check one promptImage and name it: an https link by its file name, a data URI by its content (and
    then its bytes: the frame the video shows at its position)."""
    if not isinstance(uri, str) or not uri:
        raise Invalid(path, "Expected an HTTPS URL, a Runway upload URI or a base64 data URI.")
    if uri.startswith(("https://", "runway://")):
        return uri.rsplit("/", 1)[-1][:120] or uri[:120], None
    if len(uri) > MAX_DATA_URI:
        raise Invalid(path, "The data URI is larger than 5MB.")
    match = _DATA_URI.fullmatch(uri)
    if not match:
        raise Invalid(path, "Expected an HTTPS URL, a Runway upload URI or a base64 data URI of a PNG, JPEG or WebP.")
    try:
        content = base64.b64decode(match.group(2), validate=True)
        with Image.open(io.BytesIO(content)) as image:
            image.verify()
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError):
        raise Invalid(path, "Invalid asset: the data URI does not hold a readable image.") from None
    extension = match.group(1).split("/")[1].replace("jpeg", "jpg")
    return f"sha256-{hashlib.sha256(content).hexdigest()[:16]}.{extension}", content


def _prompt_images(data: dict[str, Any], model: Model) -> tuple[list[str], Any, dict[str, bytes]]:
    """The names of the images in promptImage, how the request records it, and the frames given inline
    ({"first": bytes, "last": bytes})."""
    value = data.get("promptImage")
    if value is None:
        raise Invalid("promptImage", "Required.")
    if isinstance(value, str):
        name, content = _image_name(value, "promptImage")
        return [name], name, {"first": content} if content else {}
    if not isinstance(value, list) or not value:
        raise Invalid("promptImage", "Expected a URI or a list of {uri, position}.")
    names, recorded, seen, frames = [], [], set(), {}
    for index, item in enumerate(value):
        where = f"promptImage.{index}"
        position = item.get("position") if isinstance(item, dict) else None
        if not isinstance(position, str) or position not in model.positions or position in seen:
            raise Invalid(f"{where}.position", f"Expected one of {', '.join(sorted(model.positions))}, each once.")
        seen.add(position)
        name, content = _image_name(item.get("uri"), f"{where}.uri")
        names.append(name)
        recorded.append({"position": position, "uri": name})
        if content:
            frames[position] = content
    return names, recorded, frames


# --- the task's state, from the clock --------------------------------------------------------


def _state(job: Job, now: datetime) -> tuple[str, float, tuple[str, str] | None]:
    """(Runway status, progress 0-1, failure) of a job at `now`."""
    flags = job.trigger_set
    if flags.moderation:
        # Moderation reads the prompt before rendering starts: the task fails as it leaves the queue.
        if now >= job.finishes_at:
            return "FAILED", 0.0, MODERATED
        return "PENDING", 0.0, None
    phase = job.phase(now)
    if phase.status == timing.QUEUED:
        return ("THROTTLED" if _throttled(job) else "PENDING"), 0.0, None
    if phase.status == timing.IN_PROGRESS:
        return "RUNNING", round(phase.progress / 100, 2), None
    if phase.status == timing.FAILED:
        return "FAILED", 0.0, FAILURE
    return "SUCCEEDED", 1.0, None


def _throttled(job: Job) -> bool:
    """Runway queues a task as THROTTLED while the organisation's earlier tasks hold its concurrency."""
    earlier = Job.objects.for_owner(job.owner, RUNWAY).filter(created_at__lt=job.created_at)
    return earlier.filter(finishes_at__gt=job.created_at).exists()


def _task(request: HttpRequest, job: Job) -> dict[str, Any]:
    now = timezone.now()
    status, progress, failure = _state(job, now)
    body: dict[str, Any] = {"id": job.id, "status": status, "createdAt": _iso(job.created_at)}
    credits = job.seconds * CREDITS_PER_SECOND
    if status in ("PENDING", "THROTTLED", "RUNNING"):
        body["estimatedCost"] = {"credits": credits}
    if status == "RUNNING":
        body["progress"] = progress
    if status == "SUCCEEDED":
        body["output"] = [_file_url(request, job, now + URL_TTL)]
        body["cost"] = {"credits": credits}
    if status == "FAILED":
        body["failure"], body["failureCode"] = failure
        body["cost"] = {"credits": 0}  # a failed task is refunded
    return body


def _file_url(request: HttpRequest, job: Job, expires_at: datetime) -> str:
    expires = int(expires_at.timestamp())
    path = reverse("simulator:runway_file", kwargs={"task_id": job.id})
    query = f"expires={expires}&signature={signing.signature(job.id, 'runway.mp4', expires)}"
    return request.build_absolute_uri(f"{path}?{query}")


# --- views -----------------------------------------------------------------------------------


def _create(request: HttpRequest, owner: str, *, with_image: bool) -> HttpResponse:
    problem = _version_problem(request)
    if problem:
        return problem
    try:
        data = _body(request)
        name, model = _model(data)
        if model.needs_image and not with_image:
            raise Invalid("model", f"{name} makes videos from an image: use POST /v1/image_to_video.")
        prompt = _prompt(data, required=not (with_image and model.needs_image))
        duration = _duration(data, model)
        ratio = _ratio(data, model.image_ratios if with_image else model.text_ratios)
        images, recorded, frames = _prompt_images(data, model) if with_image else ([], None, {})
    except Invalid as exc:
        return _invalid(exc)
    flags = triggers.parse(prompt)
    sent = {key: value for key, value in data.items() if key not in ("promptText", "promptImage")}
    if recorded is not None:
        sent["promptImage"] = recorded
    try:
        job, created = Job.objects.start(
            owner=owner,
            protocol=RUNWAY,
            prompt=prompt or "(image only)",
            seconds=duration,
            triggers=flags,
            model=name,
            size=ratio.replace(":", "x"),
            request=sent,
            images=images,
        )
    except InFlightLimit as exc:
        response = _error(429, f"Too many tasks in progress for this organization (limit {exc.limit}). Retry shortly.")
        response["Retry-After"] = "1"
        return response
    if created and frames:
        assets.keep_frames(job, start=frames.get("first"), end=frames.get("last"))
    if flags.moderation:
        # Moderation decides before rendering: the task ends (and frees its slot) as it leaves the queue.
        Job.objects.filter(pk=job.pk).update(finishes_at=job.created_at + job.duration * timing.QUEUED_SHARE)
    return JsonResponse({"id": job.id, "estimatedCost": {"credits": duration * CREDITS_PER_SECOND}})


@endpoint(["POST"], _unauthorized)
def text_to_video(request: HttpRequest, owner: str) -> HttpResponse:
    """Start a video from `promptText` alone."""
    return _create(request, owner, with_image=False)


@endpoint(["POST"], _unauthorized)
def image_to_video(request: HttpRequest, owner: str) -> HttpResponse:
    """Start a video from `promptImage` (its first frame) and `promptText`."""
    return _create(request, owner, with_image=True)


@endpoint(["GET", "DELETE"], _unauthorized)
def task(request: HttpRequest, owner: str, task_id: str) -> HttpResponse:
    """GET: where a task stands. DELETE: cancel it (or delete it once finished); 204."""
    problem = _version_problem(request)
    if problem:
        return problem
    job = Job.objects.for_owner(owner, RUNWAY).filter(pk=task_id).first()
    if job is None:
        return _error(404, "Task not found.")
    if request.method == "DELETE":
        assets.delete_all(job)
        job.delete()
        return HttpResponse(status=204)
    if job.trigger_set.flaky and job.claim_flaky_failure():
        return _error(503, "Service temporarily unavailable (simulated #flaky).")
    if job.trigger_set.garbage:
        return HttpResponse(GARBAGE, content_type="text/html")
    return JsonResponse(_task(request, job))


@csrf_exempt
@login_not_required
@require_safe
def task_file(request: HttpRequest, task_id: str) -> HttpResponse:
    """A succeeded task's MP4, as Runway's CDN serves it: the signed link is the credential."""
    if not signing.is_valid(task_id, "runway.mp4", request.GET.get("expires", ""), request.GET.get("signature", "")):
        return HttpResponse(
            "Access denied: this link is invalid or has expired.", status=403, content_type="text/plain"
        )
    job = Job.objects.filter(protocol=RUNWAY, pk=task_id).first()
    if job is None or _state(job, timezone.now())[0] != "SUCCEEDED":
        return HttpResponse("Not found.", status=404, content_type="text/plain")
    try:
        name = assets.ensure(job, "video")
    except render.RenderError:
        return HttpResponse("The simulated renderer crashed.", status=500, content_type="text/plain")
    return FileResponse(default_storage.open(name, "rb"), content_type="video/mp4")
