"""The `gemini_veo` protocol: Veo through the Gemini API, as the `google-genai` package (2.x) speaks it.

Reference: https://ai.google.dev/gemini-api/docs/video and, for the exact wire shape, the installed SDK:
google/genai/models.py (`_GenerateVideosParameters_to_mldev`, `_GenerateVideosOperation_from_mldev`),
operations.py and files.py. Base: {host}/simulator/veo/v1beta.

- `POST models/{model}:predictLongRunning` -> `{"name": "models/{model}/operations/{id}"}`
- `GET models/{model}/operations/{id}` -> the operation; while it runs, no `done` (false is omitted, as
  Google's JSON omits defaults). Done: `error: {code, message}` (#fail), or `response.generateVideoResponse`
  with `generatedSamples[0].video.uri`, or, for a safety refusal (#moderation), only
  `raiMediaFilteredCount` / `raiMediaFilteredReasons`.
- `GET files/{id}:download?alt=media` -> the MP4 (the key is needed here too). Veo makes no thumbnail.
- The key comes in `x-goog-api-key` (or `?key=`). A wrong key is a 400 INVALID_ARGUMENT with ErrorInfo
  reason API_KEY_INVALID, as the real API answers, not a 401.

The real API reports no progress. The simulator adds `metadata.progressPercent` to a running operation
(operation metadata is free-form, and the SDK passes it through) so a studio has something to show.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
from typing import Any

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from . import assets, render, timing, triggers
from .auth import endpoint
from .models import VEO, InFlightLimit, Job

MAX_PROMPT = 32000
DURATIONS = (4, 6, 8)
ASPECT_RATIOS = ("16:9", "9:16")
RESOLUTIONS = ("720p", "1080p")
SIZES = {
    ("16:9", "720p"): "1280x720",
    ("9:16", "720p"): "720x1280",
    ("16:9", "1080p"): "1920x1080",
    ("9:16", "1080p"): "1080x1920",
}
MAX_REFERENCE_IMAGES = 3
REFERENCE_TYPES = ("asset", "style")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
GARBAGE = "<html><body><h1>502 Bad Gateway</h1><p>gateway error</p></body></html>"
RESPONSE_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
FAILURE_MESSAGE = "The simulated renderer failed halfway through."
RAI_REASON = (
    "The video could not be generated because the prompt may violate our policies (simulated #moderation trigger)."
)
_STATUS_WORDS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class InvalidArgument(Exception):
    """A 400 INVALID_ARGUMENT about one field, named as Google names it (`parameters.duration_seconds`)."""


def _error(code: int, message: str, details: list[dict] | None = None) -> JsonResponse:
    body: dict[str, Any] = {"code": code, "message": message, "status": _STATUS_WORDS[code]}
    if details:
        body["details"] = details
    return JsonResponse({"error": body}, status=code)


def _unauthorized() -> JsonResponse:
    # What the Gemini API answers to a key it does not know; the key itself is never echoed.
    return _error(
        400,
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
        ],
    )


def _rate_limited(limit: int) -> JsonResponse:
    response = _error(
        429,
        f"Resource has been exhausted: at most {limit} videos in progress for this key.",
        [
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"},
        ],
    )
    response["Retry-After"] = "1"
    return response


def _not_found(what: str) -> JsonResponse:
    return _error(404, f"{what} not found.")


# --- request parsing -------------------------------------------------------------------------


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        raise InvalidArgument("Invalid JSON payload received.") from None
    if not isinstance(data, dict):
        raise InvalidArgument("Invalid JSON payload received. The request must be a JSON object.")
    return data


def _instance(data: dict[str, Any]) -> dict[str, Any]:
    instances = data.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        raise InvalidArgument("* instances: exactly one instance is supported.")
    return instances[0]


def _prompt(instance: dict[str, Any]) -> str:
    prompt = instance.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidArgument("* instances[0].prompt: a text prompt is required.")
    if len(prompt) > MAX_PROMPT:
        raise InvalidArgument(f"* instances[0].prompt: at most {MAX_PROMPT} characters.")
    return prompt


def _duration(parameters: dict[str, Any]) -> int:
    """An int32 as proto3 JSON allows it (8, 8.0 or "8"); JSON's true, 1e400 and "8s" are refused."""
    raw = parameters.get("durationSeconds", 8)
    value = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():  # NaN and infinities are not integers
        value = int(raw)
    elif isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) < 10:
        value = int(raw)
    if value not in DURATIONS:
        shown = json.dumps(raw)[:40]
        raise InvalidArgument(f"* parameters.duration_seconds: {shown} is not supported; use 4, 6 or 8.")
    return value


def _choice(parameters: dict[str, Any], key: str, field: str, allowed: tuple[str, ...]) -> str:
    value = parameters.get(key, allowed[0])
    if value not in allowed:
        shown = json.dumps(value)[:40] if isinstance(value, str | int) else type(value).__name__
        raise InvalidArgument(f"* parameters.{field}: {shown} is not supported; use {' or '.join(allowed)}.")
    return value


def _image(value: Any, field: str) -> tuple[str, bytes]:
    """Check an Image `{bytesBase64Encoded, mimeType}` really is an image; describe it as mime:sha256."""
    if not isinstance(value, dict) or not isinstance(value.get("bytesBase64Encoded"), str):
        raise InvalidArgument(f'* {field}: give the image as {{"bytesBase64Encoded": ..., "mimeType": ...}}.')
    try:
        content = base64.b64decode(value["bytesBase64Encoded"], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidArgument(f"* {field}.bytes_base64_encoded: not valid base64.") from None
    if not content or len(content) > MAX_IMAGE_BYTES:
        raise InvalidArgument(f"* {field}: the image is empty or larger than 20 MB.")
    try:
        with Image.open(io.BytesIO(content)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidArgument(f"* {field}: the image could not be read as PNG, JPEG or WebP.") from None
    mime = value.get("mimeType") or "image/png"
    return f"{str(mime)[:40]}:{hashlib.sha256(content).hexdigest()[:16]}", content


def _images(instance: dict[str, Any]) -> tuple[list[str], dict[str, bytes]]:
    """What images came with the prompt: a first frame, a last frame and/or reference images, as
    kind:mime:sha256, and the first and last frames' bytes ("start", "end"). A last frame needs a first one
    (Veo interpolates between them)."""
    seen, frames = [], {}
    if instance.get("image") is not None:
        described, frames["start"] = _image(instance["image"], "instances[0].image")
        seen.append("image:" + described)
    if instance.get("lastFrame") is not None:
        if "start" not in frames:
            raise InvalidArgument("* instances[0].last_frame: a last frame needs a first frame (instances[0].image).")
        described, frames["end"] = _image(instance["lastFrame"], "instances[0].last_frame")
        seen.append("lastFrame:" + described)
    references = instance.get("referenceImages")
    references = [] if references is None else references
    if not isinstance(references, list) or len(references) > MAX_REFERENCE_IMAGES:
        raise InvalidArgument(f"* instances[0].reference_images: at most {MAX_REFERENCE_IMAGES} images.")
    for index, reference in enumerate(references):
        field = f"instances[0].reference_images[{index}]"
        if not isinstance(reference, dict):
            raise InvalidArgument(f"* {field}: must be an object with an image and a referenceType.")
        kind = str(reference.get("referenceType") or "asset").lower()  # the SDK sends ASSET, the docs asset
        if kind not in REFERENCE_TYPES:
            raise InvalidArgument(f"* {field}.reference_type: use asset or style.")
        seen.append(f"{kind}:" + _image(reference.get("image"), f"{field}.image")[0])
    return seen, frames


# --- answers ---------------------------------------------------------------------------------


def operation_name(job: Job) -> str:
    return f"models/{job.model}/operations/{job.id}"


def _file_id(job: Job) -> str:
    # The SDK takes a file name from a download URI as the run of [a-z0-9] after "files/": no underscore.
    return job.id.removeprefix("op_")


def _operation(request: HttpRequest, job: Job) -> dict[str, Any]:
    phase = job.phase()
    body: dict[str, Any] = {"name": operation_name(job)}
    if not phase.is_terminal:
        body["metadata"] = {"progressPercent": phase.progress}
        return body
    body["done"] = True
    if phase.status == timing.FAILED:
        body["error"] = {"code": 13, "message": FAILURE_MESSAGE}
        return body
    if job.trigger_set.moderation:
        result: dict[str, Any] = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [RAI_REASON]}
    else:
        path = reverse("simulator:veo_file", kwargs={"file_id": _file_id(job)})
        result = {"generatedSamples": [{"video": {"uri": request.build_absolute_uri(path) + "?alt=media"}}]}
    body["response"] = {"@type": RESPONSE_TYPE, "generateVideoResponse": result}
    return body


# --- views -----------------------------------------------------------------------------------


@endpoint(["POST"], _unauthorized, scheme="goog")
def predict_long_running(request: HttpRequest, owner: str, model: str) -> HttpResponse:
    """Start a video: one instance (prompt, optional first frame and reference images) and its parameters."""
    if not model.startswith("veo-") or len(model) > 100:
        return _error(
            404, f"models/{model[:80]} is not found for API version v1beta, or is not supported for predictLongRunning."
        )
    try:
        data = _body(request)
        instance = _instance(data)
        prompt = _prompt(instance)
        parameters = data.get("parameters")
        parameters = {} if parameters is None else parameters
        if not isinstance(parameters, dict):
            raise InvalidArgument("* parameters: must be an object.")
        seconds = _duration(parameters)
        aspect_ratio = _choice(parameters, "aspectRatio", "aspect_ratio", ASPECT_RATIOS)
        resolution = _choice(parameters, "resolution", "resolution", RESOLUTIONS)
        images, frames = _images(instance)
    except InvalidArgument as exc:
        return _error(400, f"Request contains an invalid argument.\n{exc}")
    try:
        # No idempotency key: the Gemini API has none, so a re-sent create makes a second video.
        job, created = Job.objects.start(
            owner=owner,
            protocol=VEO,
            prompt=prompt,
            seconds=seconds,
            triggers=triggers.parse(prompt),
            model=model,
            size=SIZES[aspect_ratio, resolution],
            request={"durationSeconds": seconds, "aspectRatio": aspect_ratio, "resolution": resolution},
            images=images,
        )
    except InFlightLimit as exc:
        return _rate_limited(exc.limit)
    if created and frames:
        assets.keep_frames(job, start=frames.get("start"), end=frames.get("end"))
    return JsonResponse({"name": operation_name(job)})


@endpoint(["GET"], _unauthorized, scheme="goog")
def operation(request: HttpRequest, owner: str, model: str, operation_id: str) -> HttpResponse:
    """Where a video stands (with the #flaky and #garbage misbehaviours)."""
    job = Job.objects.for_owner(owner, VEO).filter(pk=operation_id, model=model).first()
    if job is None:
        return _not_found(f"Operation models/{model[:80]}/operations/{operation_id[:80]}")
    if job.trigger_set.flaky and job.claim_flaky_failure():
        return _error(503, "The service is currently unavailable (simulated #flaky).")
    if job.trigger_set.garbage:
        return HttpResponse(GARBAGE, content_type="text/html")
    return JsonResponse(_operation(request, job))


@endpoint(["GET", "HEAD"], _unauthorized, scheme="goog")
def file_download(request: HttpRequest, owner: str, file_id: str) -> HttpResponse:
    """A finished video's MP4 (`?alt=media`), rendered on first download; it lives as long as the link."""
    if request.GET.get("alt") != "media":
        return _error(400, "Only media downloads are simulated: add alt=media.")
    job = Job.objects.for_owner(owner, VEO).filter(pk=f"op_{file_id}").first()
    phase = job.phase() if job else None
    if job is None or phase.status != timing.COMPLETED or job.trigger_set.moderation:
        return _not_found(f"File files/{file_id[:80]}")
    expires_at = job.expires_at(phase)
    if expires_at and timezone.now() > expires_at:
        return _not_found(f"File files/{file_id[:80]}")
    try:
        name = assets.ensure(job, "video")
    except render.RenderError:
        return _error(500, "The simulated renderer crashed.")
    return FileResponse(default_storage.open(name, "rb"), content_type="video/mp4")
