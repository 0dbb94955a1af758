"""The `replicate` protocol: Replicate's predictions API, as the official `replicate` package speaks it.

Reference: https://replicate.com/docs/reference/http and, for the exact wire shape, `replicate/prediction.py`,
`replicate/model.py` and `replicate/client.py` of the installed SDK (1.0.x). The SDK's base URL has no `/v1`
(it adds it to every path), so it is pointed at {host}/simulator/replicate; the studio's base URL ends in /v1.

- `POST /v1/models/{owner}/{name}/predictions` `{"input": {...}, "webhook"?, "webhook_events_filter"?}` → 201
  prediction `starting`. With `Prefer: wait[=n]` the answer is held until the prediction ends (at most n s);
  one still unfinished then comes back as `starting`, which is what the SDK's `run()` expects.
- `GET /v1/predictions/{id}` → `starting` | `processing` | `succeeded` (`output`: the video URL) | `failed`
  (`error`) | `canceled`. Progress is only in `logs`, as tqdm lines the SDK parses (`Prediction.progress`).
- `POST /v1/predictions/{id}/cancel`, `GET /v1/predictions` (newest first, cursor pages).
- A create with `webhook` (and a `webhook_events_filter` that has `completed`, or none) is called back when
  the prediction ends, signed the Standard Webhooks way with the secret `GET /v1/webhooks/default/secret`
  gives (callbacks.py); only URLs on SIMULATOR_FETCH_ORIGINS are called.
- Errors are RFC 7807 problem details `{"title", "detail", "status"}`; bad input is 422 "Input validation failed".
- Keys: `Authorization: Bearer <key>` (the SDK) or `Token <key>` (older clients; the API takes both).

A content-moderation refusal is not an HTTP error on Replicate: the prediction is created, then fails with
an error saying the input or output was flagged. Image inputs are http(s) URLs or base64 data URIs; the
simulator keeps only their names (a URL's file name, or a digest of a data URI's bytes), never the bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import re
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import unquote, urlsplit

from django.contrib.auth.decorators import login_not_required
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe
from PIL import Image, UnidentifiedImageError

from . import assets, callbacks, render, signing, timing, triggers
from .auth import owner_from
from .models import FAILURE, REPLICATE, InFlightLimit, Job

GARBAGE = "<html><body><h1>502 Bad Gateway</h1><p>gateway error</p></body></html>"
# What Replicate says when a model's safety filter refuses the input or the output (error code E005).
FLAGGED = "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
MAX_PROMPT = 2500  # Kling's own limit
MAX_WAIT = 60  # seconds a `Prefer: wait` create may be held, as on Replicate
MAX_IMAGE_BYTES = 10 * 1024 * 1024
PAGE_SIZE = 100
_PREFER_WAIT = re.compile(r"^\s*wait(?:\s*=\s*(\d{1,3}))?\s*$", re.IGNORECASE)
_MODEL_PART = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")
_DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)(?:;[^,;]*)*;base64,(?P<data>.*)$", re.DOTALL)
FILE_VARIANT = "replicate.mp4"  # what the delivery link's signature covers
WEBHOOK_EVENTS = ("start", "output", "logs", "completed")


@dataclass(frozen=True)
class Model:
    """The input schema of one model, as its page on replicate.com shows it (read Nov 2026)."""

    required: tuple[str, ...]
    choices: dict[str, tuple] = field(default_factory=dict)  # input -> allowed values (also fixes the type)
    numbers: dict[str, tuple[float, float]] = field(default_factory=dict)  # input -> (min, max)
    images: tuple[str, ...] = ()
    texts: tuple[str, ...] = ("prompt", "negative_prompt")
    defaults: dict[str, Any] = field(default_factory=dict)


KLING_DURATIONS = (5, 10)
RATIOS = ("16:9", "9:16", "1:1")
MODELS = {
    # https://replicate.com/kwaivgi/kling-v2.1/api — image-to-video: "You must use a start image with kling-v2.1."
    "kwaivgi/kling-v2.1": Model(
        required=("prompt", "start_image"),
        choices={"duration": KLING_DURATIONS, "mode": ("standard", "pro")},
        images=("start_image", "end_image"),
        defaults={"duration": 5, "mode": "standard"},
    ),
    # https://replicate.com/kwaivgi/kling-v2.1-master/api — text-to-video, start_image optional.
    "kwaivgi/kling-v2.1-master": Model(
        required=("prompt",),
        choices={"duration": KLING_DURATIONS, "aspect_ratio": RATIOS},
        images=("start_image",),
        defaults={"duration": 5, "aspect_ratio": "16:9"},
    ),
    # https://replicate.com/kwaivgi/kling-v1.6-standard/api — text-to-video, start_image optional.
    "kwaivgi/kling-v1.6-standard": Model(
        required=("prompt",),
        choices={"duration": KLING_DURATIONS, "aspect_ratio": RATIOS},
        numbers={"cfg_scale": (0.0, 1.0)},
        images=("start_image",),
        defaults={"duration": 5, "aspect_ratio": "16:9", "cfg_scale": 0.5},
    ),
}
SIZES = {"16:9": "1280x720", "9:16": "720x1280", "1:1": "720x720"}
PRO_SIZES = {"16:9": "1920x1080", "9:16": "1080x1920", "1:1": "1080x1080"}


class InvalidInput(Exception):
    """A 422 "Input validation failed" about one input."""

    def __init__(self, field_name: str, description: str, kind: str = "invalid") -> None:
        super().__init__(description)
        self.field, self.description, self.kind = field_name, description, kind


# --- answers -----------------------------------------------------------------------------------


def _problem(status: int, title: str, detail: str, **extra: Any) -> JsonResponse:
    body = {"title": title, "detail": detail, "status": status, **extra}
    return JsonResponse(body, status=status, content_type="application/problem+json")


def _unauthorized() -> JsonResponse:
    return _problem(401, "Unauthenticated", "You did not pass a valid authentication token")


def _not_found() -> JsonResponse:
    return _problem(404, "Not found", "The requested resource could not be found.")


def _invalid(exc: InvalidInput) -> JsonResponse:
    return _problem(
        422,
        "Input validation failed",
        f"- input.{exc.field}: {exc.description}\n" if exc.field != "input" else f"- input: {exc.description}\n",
        invalid_fields=[
            {
                "type": exc.kind,
                "field": f"input.{exc.field}" if exc.field != "input" else "input",
                "description": exc.description,
            }
        ],
    )


def _throttled(limit: int) -> JsonResponse:
    response = _problem(
        429,
        "Too Many Requests",
        f"Request was throttled: this token already has {limit} predictions running. Expected available in 1 second.",
    )
    response["Retry-After"] = "1"
    return response


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else None


def _version(model: str) -> str:
    """A stable stand-in for the model's latest version id (64 hex digits, like Replicate's)."""
    return hashlib.sha256(f"simulator:{model}".encode()).hexdigest()


def _canceled_at(job: Job) -> datetime | None:
    value = job.request.get("canceled_at") if isinstance(job.request, dict) else None
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _logs(model: str, progress: int, *, done: bool) -> str:
    """Progress as the tqdm lines Replicate models print and the SDK parses (`Prediction.progress`)."""
    bar = "█" * (progress // 10) + " " * (10 - progress // 10)
    lines = [f"Generating video with {model}", f"{progress:3d}%|{bar}| {progress}/100"]
    if done:
        lines.append("Video saved to output.mp4")
    return "\n".join(lines) + "\n"


def _status(job: Job, now: datetime) -> tuple[str, timing.Phase]:
    """The Replicate status word and the clock's phase; a canceled prediction stays canceled."""
    canceled_at = _canceled_at(job)
    phase = job.phase(canceled_at if canceled_at else now)
    if canceled_at and not phase.is_terminal:
        return "canceled", phase
    return {
        timing.QUEUED: "starting",
        timing.IN_PROGRESS: "processing",
        timing.COMPLETED: "succeeded",
        timing.FAILED: "failed",
    }[phase.status], phase


def _prediction(request: HttpRequest, job: Job, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    status, phase = _status(job, now)
    started_at = job.created_at + job.duration * timing.QUEUED_SHARE if phase.status != timing.QUEUED else None
    completed_at = (
        (_canceled_at(job) if status == "canceled" else phase.finished_at)
        if status in ("succeeded", "failed", "canceled")
        else None
    )
    get_url = request.build_absolute_uri(reverse("simulator:replicate_prediction", args=[job.id]))
    body: dict[str, Any] = {
        "id": job.id,
        "model": job.model,
        "version": _version(job.model),
        "input": job.request.get("input", {}),
        "logs": "" if status == "starting" else _logs(job.model, phase.progress, done=status == "succeeded"),
        "output": _file_url(request, job, phase) if status == "succeeded" else None,
        "data_removed": False,
        "error": None,
        "status": status,
        "source": "api",
        "created_at": _iso(job.created_at),
        "started_at": _iso(started_at),
        "completed_at": _iso(completed_at),
        "urls": {"get": get_url, "cancel": f"{get_url}/cancel"},
        "metrics": {},
    }
    if status == "failed":
        body["error"] = FLAGGED if job.trigger_set.moderation else FAILURE["message"]
    if status == "succeeded" and completed_at and started_at:
        body["metrics"] = {
            "predict_time": round((completed_at - started_at).total_seconds(), 3),
            "video_output_duration_seconds": job.seconds,
        }
    return body


def _file_url(request: HttpRequest, job: Job, phase: timing.Phase) -> str:
    """A signed link to the MP4, like the replicate.delivery URLs (no token needed to follow it)."""
    expires_at = job.expires_at(phase)
    expires = int(expires_at.timestamp()) if expires_at else 0
    path = reverse("simulator:replicate_file", args=[job.id])
    query = f"expires={expires}&signature={signing.signature(job.id, FILE_VARIANT, expires)}"
    return request.build_absolute_uri(f"{path}?{query}")


# --- request parsing ---------------------------------------------------------------------------


def _body(request: HttpRequest) -> dict[str, Any] | None:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number" if isinstance(value, float) else "integer"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "unknown")


def _choice(name: str, value: Any, allowed: tuple) -> Any:
    if isinstance(allowed[0], int):
        # JSON's 5.0 is the integer 5; `true`, "5" and 1e400 (a float infinity) are not.
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(name, f"Invalid type. Expected: integer, given: {_type_name(value)}", "invalid_type")
    elif not isinstance(value, str):
        raise InvalidInput(name, f"Invalid type. Expected: string, given: {_type_name(value)}", "invalid_type")
    if value not in allowed:
        raise InvalidInput(name, f"{name} must be one of the following: {', '.join(map(str, allowed))}", "enum")
    return value


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(name, f"Invalid type. Expected: number, given: {_type_name(value)}", "invalid_type")
    if not low <= value <= high:
        raise InvalidInput(name, f"Must be between {low:g} and {high:g}", "number_range")
    return value


def _image(name: str, value: Any) -> tuple[str, tuple[int, int] | None, bytes | None]:
    """(what to remember of the image, its pixel size and bytes when it came inline) for a URL or a data URI."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(name, f"Invalid type. Expected: string, given: {_type_name(value)}", "invalid_type")
    if value.startswith(("http://", "https://")):
        # A real provider fetches it; the simulator fetches nothing (it is nobody's open proxy).
        file_name = unquote(urlsplit(value).path.rsplit("/", 1)[-1]) or urlsplit(value).hostname or "image"
        return file_name[:120], None, None
    match = _DATA_URI.match(value)
    # Any media type: the SDK labels a nameless file application/octet-stream; the bytes decide.
    if not match:
        raise InvalidInput(
            name, "Does not match format 'uri': give an http(s) URL or a base64 image data URI", "format"
        )
    try:
        content = base64.b64decode(match["data"], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(name, "The data URI is not valid base64", "format") from None
    if len(content) > MAX_IMAGE_BYTES:
        raise InvalidInput(name, "The image is larger than 10 MB", "file_size")
    try:
        with Image.open(io.BytesIO(content)) as image:
            size = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidInput(name, "The file is not a JPEG, PNG or WebP image", "format") from None
    return f"sha256:{hashlib.sha256(content).hexdigest()[:16]}", size, content


@dataclass
class Input:
    values: dict[str, Any]  # what the model runs with, defaults filled in
    recorded: dict[str, Any]  # the same with each image by name: kept on the job and echoed back
    image_names: list[str]
    start_size: tuple[int, int] | None  # of an inline start image
    frames: dict[str, bytes] = field(default_factory=dict)  # the inline start_image / end_image: "start", "end"


def _input(model: Model, data: dict[str, Any]) -> Input:
    """The prediction's input checked against the model's schema, or InvalidInput."""
    given = data.get("input")
    if not isinstance(given, dict):
        raise InvalidInput("input", "input is required and must be an object", "required")
    for name in model.required:
        if given.get(name) in (None, ""):
            raise InvalidInput("input", f"{name} is required", "required")
    values = {**model.defaults}
    recorded: dict[str, Any] = {}
    image_names: list[str] = []
    image_sizes: dict[str, tuple[int, int] | None] = {}
    frames: dict[str, bytes] = {}
    for name, value in given.items():
        if name in model.texts:
            if not isinstance(value, str):
                raise InvalidInput(name, f"Invalid type. Expected: string, given: {_type_name(value)}", "invalid_type")
            if len(value) > MAX_PROMPT:
                raise InvalidInput(name, f"String length must be less than or equal to {MAX_PROMPT}", "string_lte")
            values[name] = value
        elif name in model.choices:
            values[name] = _choice(name, value, model.choices[name])
        elif name in model.numbers:
            values[name] = _number(name, value, *model.numbers[name])
        elif name in model.images:
            if value in (None, ""):
                continue
            remembered, image_sizes[name], content = _image(name, value)
            if content and name in ("start_image", "end_image"):
                frames[name.removesuffix("_image")] = content
            image_names.append(f"{name}: {remembered}")
            values[name] = value
            recorded[name] = remembered
            continue
        else:  # like a Cog model, anything the schema does not name is ignored (and echoed back)
            values[name] = value
        recorded[name] = values[name]
    if "end_image" in values and values.get("mode") != "pro":
        raise InvalidInput("end_image", "end_image needs mode 'pro'", "dependency")
    for name, default in model.defaults.items():
        recorded.setdefault(name, default)
    return Input(values, recorded, image_names, image_sizes.get("start_image"), frames)


def _video_size(values: dict[str, Any], start: tuple[int, int] | None) -> str:
    """The simulated video's frame: from the start image where there is one (Kling ignores the ratio then)."""
    sizes = PRO_SIZES if values.get("mode") == "pro" else SIZES
    if start:
        width, height = start
        ratio = "16:9" if width > height else "9:16" if height > width else "1:1"
    else:
        ratio = values.get("aspect_ratio", "16:9")
    return sizes.get(ratio, SIZES["16:9"])


def _webhook(data: dict[str, Any]) -> str:
    """The URL to call back when the prediction completes, or "" (none given, or the filter leaves out
    `completed`, the one event the simulator sends); InvalidInput for a malformed one."""
    url, events = data.get("webhook"), data.get("webhook_events_filter")
    if url in (None, ""):
        return ""
    if not isinstance(url, str) or len(url) > 500 or not url.startswith(("http://", "https://")):
        raise InvalidInput("webhook", "Does not match format 'uri': give an http(s) URL", "format")
    if events is not None:
        if not isinstance(events, list) or not all(isinstance(e, str) and e in WEBHOOK_EVENTS for e in events):
            raise InvalidInput(
                "webhook_events_filter", f"Each event must be one of: {', '.join(WEBHOOK_EVENTS)}", "enum"
            )
        if "completed" not in events:
            return ""
    return url


def _ended(job: Job) -> bool:
    return _status(job, timezone.now())[0] in ("succeeded", "failed", "canceled")


def _callback(site: callbacks.Site, job: Job) -> tuple[bytes, dict[str, str]]:
    """The `completed` delivery: the prediction as GET answers it, signed the Standard Webhooks way. Its id
    is the same on every attempt, as Standard Webhooks asks (the receiver deduplicates by it)."""
    body = json.dumps(_prediction(site, job)).encode()
    delivery_id = "msg_" + hashlib.sha256(f"{job.id}:completed".encode()).hexdigest()[:24]
    return body, callbacks.replicate_headers(job.owner, delivery_id, body)


def _prefer_wait(request: HttpRequest) -> float:
    """Seconds a `Prefer: wait` / `Prefer: wait=n` create may be held; 0 without the header."""
    match = _PREFER_WAIT.match(request.headers.get("Prefer", ""))
    if not match:
        return 0.0
    return float(min(int(match[1] or MAX_WAIT), MAX_WAIT)) if match[1] != "0" else 0.0


# --- views ---------------------------------------------------------------------------------------


def endpoint(methods: list[str]):
    """A Replicate API endpoint: no CSRF or login (it is an API), these methods, a Bearer or Token key."""

    def decorator(view):
        def wrapped(request: HttpRequest, *args, **kwargs):
            owner = owner_from(request, "bearer") or owner_from(request, "token")
            if owner is None:
                return _unauthorized()
            return view(request, owner, *args, **kwargs)

        wrapped.__name__, wrapped.__doc__ = view.__name__, view.__doc__
        return csrf_exempt(login_not_required(require_http_methods(methods)(wrapped)))

    return decorator


@endpoint(["POST"])
def create(request: HttpRequest, owner: str, model_owner: str, model_name: str) -> HttpResponse:
    """Start a prediction of an official model: {"input": {...}} → 201 `starting`."""
    model_id = f"{model_owner}/{model_name}"
    model = MODELS.get(model_id) if _MODEL_PART.match(model_owner) and _MODEL_PART.match(model_name) else None
    if model is None:
        return _not_found()
    data = _body(request)
    if data is None:
        return _problem(400, "Bad Request", "The request body is not a JSON object.")
    try:
        given = _input(model, data)
        webhook = _webhook(data)
    except InvalidInput as exc:
        return _invalid(exc)
    prompt = given.values["prompt"]
    flags = triggers.parse(prompt)
    if flags.moderation:
        # The model runs, then its safety filter refuses: a failed prediction, not an HTTP error.
        flags = replace(flags, fail=True)
    try:
        job, created = Job.objects.start(
            owner=owner,
            protocol=REPLICATE,
            prompt=prompt,
            seconds=given.values["duration"],
            triggers=flags,
            model=model_id,
            size=_video_size(given.values, given.start_size),
            request={"input": given.recorded, "webhook": str(data.get("webhook") or "")[:500]},
            images=given.image_names,
            webhook=webhook,
        )
    except InFlightLimit as exc:
        return _throttled(exc.limit)
    if created and given.frames:
        assets.keep_frames(job, start=given.frames.get("start"), end=given.frames.get("end"))
    if created:
        callbacks.schedule(job, _ended, partial(_callback, callbacks.Site(request)))
    wait = _prefer_wait(request)
    if wait:
        return _held(request, job, wait)
    # The answer describes the prediction as it was created, however long the answer took to write.
    return JsonResponse(_prediction(request, job, job.created_at), status=201)


def _held(request: HttpRequest, job: Job, wait: float) -> JsonResponse:
    """`Prefer: wait`: answer once the prediction ends, or at the deadline as `starting` (the SDK's `run()`
    treats any other status of a held answer as final)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if job.phase().is_terminal:
            return JsonResponse(_prediction(request, job), status=201)
        time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))
    body = _prediction(request, job)
    if body["status"] not in ("succeeded", "failed", "canceled"):
        body.update(status="starting", logs="", started_at=None)
    return JsonResponse(body, status=201)


@endpoint(["GET"])
def prediction(request: HttpRequest, owner: str, prediction_id: str) -> HttpResponse:
    """Where a prediction stands (with the #flaky and #garbage misbehaviours)."""
    job = Job.objects.for_owner(owner, REPLICATE).filter(pk=prediction_id).first()
    if job is None:
        return _not_found()
    if job.trigger_set.flaky and job.claim_flaky_failure():
        return _problem(503, "Service Unavailable", "The service is temporarily unavailable (simulated #flaky).")
    if job.trigger_set.garbage:
        # What a misbehaving proxy in front of the API sends: 200, but not the API's JSON.
        return HttpResponse(GARBAGE, content_type="text/html")
    return JsonResponse(_prediction(request, job))


@endpoint(["POST"])
def cancel(request: HttpRequest, owner: str, prediction_id: str) -> HttpResponse:
    """Cancel a prediction that has not ended; one that has is returned as it is."""
    job = Job.objects.for_owner(owner, REPLICATE).filter(pk=prediction_id).first()
    if job is None:
        return _not_found()
    now = timezone.now()
    if not job.phase(now).is_terminal and _canceled_at(job) is None:
        job.request = {**job.request, "canceled_at": now.isoformat()}
        job.finishes_at = now  # no longer counts against the key's running predictions
        job.save(update_fields=["request", "finishes_at"])
    return JsonResponse(_prediction(request, job, now))


@endpoint(["GET"])
def webhook_secret(request: HttpRequest, owner: str) -> HttpResponse:
    """The secret this key's callbacks are signed with (`whsec_…`, Standard Webhooks), as the SDK's
    `webhooks.default.secret()` reads it."""
    return JsonResponse({"key": callbacks.replicate_secret(owner)})


@endpoint(["GET"])
def predictions(request: HttpRequest, owner: str) -> HttpResponse:
    """This key's predictions, newest first, a page at a time (`?cursor=` is where the last page ended)."""
    jobs = Job.objects.for_owner(owner, REPLICATE).order_by("-created_at", "-id")
    cursor = request.GET.get("cursor", "")
    if cursor:
        after = Job.objects.for_owner(owner, REPLICATE).filter(pk=cursor).first()
        if after is None:
            return _problem(400, "Bad Request", "The cursor is not valid.")
        jobs = jobs.filter(created_at__lte=after.created_at).exclude(created_at=after.created_at, id__gte=after.id)
    page = list(jobs[: PAGE_SIZE + 1])
    more = len(page) > PAGE_SIZE
    page = page[:PAGE_SIZE]
    now = timezone.now()
    next_url = None
    if more:
        next_url = request.build_absolute_uri(f"{reverse('simulator:replicate_predictions')}?cursor={page[-1].id}")
    return JsonResponse({"previous": None, "next": next_url, "results": [_prediction(request, j, now) for j in page]})


@csrf_exempt
@login_not_required
@require_safe
def output_file(request: HttpRequest, prediction_id: str) -> HttpResponse:
    """A succeeded prediction's MP4; the signed link itself is the credential, as on replicate.delivery."""
    if not signing.is_valid(
        prediction_id, FILE_VARIANT, request.GET.get("expires", ""), request.GET.get("signature", "")
    ):
        return _problem(403, "Forbidden", "This link is invalid or has expired.")
    job = Job.objects.filter(protocol=REPLICATE, pk=prediction_id).first()
    if job is None or _status(job, timezone.now())[0] != "succeeded":
        return _not_found()
    try:
        name = assets.ensure(job, "video")
    except render.RenderError:
        return _problem(500, "Internal Server Error", "The simulated renderer crashed.")
    return FileResponse(default_storage.open(name, "rb"), content_type="video/mp4")
