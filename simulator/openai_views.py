"""The `openai_videos` protocol: the OpenAI Videos API shape, as the `openai` package speaks it.

Reference: https://platform.openai.com/docs/api-reference/videos and, for the exact wire
encoding, `openai/resources/videos.py` in the installed SDK. The SDK always sends create and
create_character as multipart/form-data; `extra_body` fields then arrive flattened with brackets
(`characters[][id]=char_…`, `input_reference[image_url]=…`). JSON bodies are accepted too.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Q
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from . import assets, render, timing, triggers
from .auth import endpoint
from .models import OPENAI, Character, InFlightLimit, Job

SECONDS = {"4", "8", "12", "16", "20"}
SIZES = {"720x1280", "1280x720", "1024x1792", "1792x1024"}
PRO_SIZES = {"1920x1080", "1080x1920"}
MAX_PROMPT = 32000
MAX_CHARACTERS = 2
MAX_REFERENCE_BYTES = 20 * 1024 * 1024
DATA_URL = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,(?P<data>.*)", re.DOTALL)
GARBAGE = "<html><body><h1>502 Bad Gateway</h1><p>gateway error</p></body></html>"
_CHARACTER_FIELD = re.compile(r"^characters(\[\d*\])?(\[id\])?$")


class InvalidRequest(Exception):
    """A 400 invalid_request_error about one parameter."""

    def __init__(self, message: str, param: str | None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def _error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> JsonResponse:
    return JsonResponse({"error": {"message": message, "type": type, "param": param, "code": code}}, status=status)


def _unauthorized() -> JsonResponse:
    # Never echo the key back, not even masked: error bodies end up in logs.
    return _error(401, "Incorrect API key provided.", code="invalid_api_key")


def _not_found(video_id: str) -> JsonResponse:
    return _error(404, f"Video with id '{video_id}' not found.", param="video_id", code="not_found")


def _invalid(exc: InvalidRequest) -> JsonResponse:
    return _error(400, exc.message, param=exc.param, code=exc.code)


def _rate_limited(limit: int) -> JsonResponse:
    response = _error(
        429,
        f"Too many video jobs in progress for this key (limit {limit}). Retry when one finishes.",
        type="requests",
        code="rate_limit_exceeded",
    )
    response["Retry-After"] = "1"
    return response


def _moderation_blocked() -> JsonResponse:
    return _error(
        400,
        "Your request was blocked by our moderation system (simulated #moderation trigger).",
        code="moderation_blocked",
    )


def _video_response(job: Job) -> JsonResponse:
    body = job.as_openai()
    response = JsonResponse(body)
    if body["status"] not in timing.TERMINAL:
        response["openai-poll-after-ms"] = str(timing.poll_after_ms())
    return response


def _get_job(owner: str, video_id: str) -> Job | None:
    return Job.objects.for_owner(owner, OPENAI).filter(pk=video_id).first()


# --- request parsing -------------------------------------------------------------------------


def _body(request: HttpRequest) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Fields and files of a JSON or multipart/urlencoded body, as one flat dict of fields."""
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError as exc:
            raise InvalidRequest("The request body is not valid JSON.", None, "invalid_json") from exc
        if not isinstance(data, dict):
            raise InvalidRequest("The request body must be a JSON object.", None, "invalid_json")
        return data, {}
    fields: dict[str, Any] = {}
    characters: list[Any] = []
    for key, values in request.POST.lists():
        if _CHARACTER_FIELD.match(key):
            characters.extend(_maybe_json(value) for value in values)
        elif key.startswith("input_reference[") and key.endswith("]"):
            fields.setdefault("input_reference", {})[key[len("input_reference[") : -1]] = values[-1]
        else:
            fields[key] = _maybe_json(values[-1]) if key == "input_reference" else values[-1]
    if characters:
        # `characters=[…]` sent as one JSON string arrives as a single list value.
        fields["characters"] = characters[0] if len(characters) == 1 and isinstance(characters[0], list) else characters
    return fields, dict(request.FILES.items())


def _maybe_json(value: str) -> Any:
    if value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _prompt(data: dict[str, Any]) -> str:
    prompt = data.get("prompt")
    if prompt is None or prompt == "":
        raise InvalidRequest("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if not isinstance(prompt, str) or len(prompt) > MAX_PROMPT:
        raise InvalidRequest(f"'prompt' must be a string of 1 to {MAX_PROMPT} characters.", "prompt")
    return prompt


def _seconds(data: dict[str, Any]) -> int:
    raw = data.get("seconds")
    # Absent means the default; anything else must be one of the values (false, 0 and "" are not 4,
    # and 1e400 arrives as a float infinity).
    if raw is None:
        value = "4"
    elif isinstance(raw, (str, int)) and not isinstance(raw, bool):
        value = str(raw)
    else:
        value = json.dumps(raw)
    if value not in SECONDS:
        allowed = ", ".join(f"'{s}'" for s in sorted(SECONDS, key=int))
        raise InvalidRequest(f"Invalid value: '{value[:40]}'. Supported values are: {allowed}.", "seconds")
    return int(value)


def _size(data: dict[str, Any], model: str) -> str:
    value = str(data.get("size") or "720x1280")
    allowed = SIZES | (PRO_SIZES if "pro" in model else set())
    if value not in allowed:
        raise InvalidRequest(
            f"Invalid value: '{value}'. Supported sizes for {model} are: {', '.join(sorted(allowed))}.", "size"
        )
    return value


def _input_reference(data: dict[str, Any], files: dict[str, UploadedFile], size: str) -> tuple[str, bytes | None]:
    """Check the reference is an image of the video's size, or an image/file reference; return what to remember
    of it and, for an image that came with the request, its bytes (the video's first frame)."""
    upload = files.get("input_reference")
    if upload is not None:
        content = upload.read(MAX_REFERENCE_BYTES + 1)
        _check_reference(content, size)
        return upload.name or "upload", content
    reference = data.get("input_reference")
    if reference in (None, ""):
        return "", None
    if isinstance(reference, dict):
        image_url = reference.get("image_url")
        if isinstance(image_url, str) and image_url.startswith("data:"):
            match = DATA_URL.fullmatch(image_url)
            try:
                content = base64.b64decode(match["data"], validate=True) if match else b""
            except (binascii.Error, ValueError):
                content = b""
            if not content:
                raise InvalidRequest("'input_reference.image_url' is not a base64 image data URL.", "input_reference")
            _check_reference(content, size)
            return image_url[:40] + "…", content
        if isinstance(image_url, str) and image_url:
            return image_url[:500], None  # a link: not fetched (the simulator is nobody's proxy)
        if isinstance(reference.get("file_id"), str) and reference["file_id"]:
            return reference["file_id"][:500], None
    raise InvalidRequest(
        '\'input_reference\' must be an image file, {"image_url": …} or {"file_id": …}.', "input_reference"
    )


def _check_reference(content: bytes, size: str) -> None:
    """A JPEG, PNG or WebP that decodes, exactly the size of the video (OpenAI refuses any other)."""
    if len(content) > MAX_REFERENCE_BYTES:
        raise InvalidRequest("'input_reference' is larger than 20 MB.", "input_reference", "file_too_large")
    try:
        with Image.open(io.BytesIO(content)) as image:
            kind, width, height = image.format, *image.size
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidRequest("'input_reference' must be a JPEG, PNG or WebP image.", "input_reference") from exc
    if kind not in ("JPEG", "PNG", "WEBP"):
        raise InvalidRequest("'input_reference' must be a JPEG, PNG or WebP image.", "input_reference")
    if f"{width}x{height}" != size:
        raise InvalidRequest(
            f"Inpaint image must match the requested width and height ({size}; the image is {width}x{height}).",
            "input_reference",
        )


def _character_ids(data: dict[str, Any], owner: str) -> list[str]:
    raw = data.get("characters") or []
    if not isinstance(raw, list):
        raw = [raw]
    ids = []
    for item in raw:
        value = item.get("id") if isinstance(item, dict) else item
        if not isinstance(value, str) or not value:
            raise InvalidRequest("Each entry of 'characters' must be an object with an 'id'.", "characters")
        ids.append(value)
    if len(ids) > MAX_CHARACTERS:
        raise InvalidRequest(f"At most {MAX_CHARACTERS} characters can be used in one video.", "characters")
    known = set(Character.objects.filter(owner=owner, protocol=OPENAI, pk__in=ids).values_list("pk", flat=True))
    missing = [value for value in ids if value not in known]
    if missing:
        raise InvalidRequest(f"Character not found: {', '.join(missing)}.", "characters", "character_not_found")
    return ids


def _idempotency_key(request: HttpRequest) -> str:
    return request.headers.get("Idempotency-Key", "").strip()[:255]


# --- views -----------------------------------------------------------------------------------


@endpoint(["GET", "POST"], _unauthorized)
def videos(request: HttpRequest, owner: str) -> HttpResponse:
    """POST creates a video job; GET lists this key's jobs."""
    if request.method == "POST":
        return _create(request, owner)
    return _list(request, owner)


def _create(request: HttpRequest, owner: str) -> HttpResponse:
    try:
        data, files = _body(request)
        prompt = _prompt(data)
        model = str(data.get("model") or "sora-2")
        seconds = _seconds(data)
        size = _size(data, model)
        reference, first_frame = _input_reference(data, files, size)
        character_ids = _character_ids(data, owner)
    except InvalidRequest as exc:
        return _invalid(exc)
    flags = triggers.parse(prompt)
    if flags.moderation:
        return _moderation_blocked()
    try:
        job, created = Job.objects.start(
            owner=owner,
            protocol=OPENAI,
            prompt=prompt,
            seconds=seconds,
            triggers=flags,
            idempotency_key=_idempotency_key(request),
            model=model,
            size=size,
            input_reference=reference,
            character_ids=character_ids,
        )
    except InFlightLimit as exc:
        return _rate_limited(exc.limit)
    if created and first_frame:
        assets.keep_frames(job, start=first_frame)
    return _video_response(job)


def _list(request: HttpRequest, owner: str) -> HttpResponse:
    order = request.GET.get("order", "desc")
    if order not in ("asc", "desc"):
        return _error(400, "Invalid value for 'order': use 'asc' or 'desc'.", param="order", code="invalid_value")
    try:
        limit = int(request.GET.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        return _error(400, "'limit' must be an integer from 1 to 100.", param="limit", code="invalid_value")
    jobs = Job.objects.for_owner(owner, OPENAI)
    after_id = request.GET.get("after")
    if after_id:
        after = jobs.filter(pk=after_id).first()
        if after is None:
            return _error(400, f"No video found with id '{after_id}'.", param="after", code="invalid_value")
        # Keyset pagination on (created_at, id): stable while new jobs keep arriving.
        if order == "desc":
            jobs = jobs.filter(Q(created_at__lt=after.created_at) | Q(created_at=after.created_at, pk__lt=after.pk))
        else:
            jobs = jobs.filter(Q(created_at__gt=after.created_at) | Q(created_at=after.created_at, pk__gt=after.pk))
    ordering = ["-created_at", "-id"] if order == "desc" else ["created_at", "id"]
    page = list(jobs.order_by(*ordering)[: limit + 1])
    has_more = len(page) > limit
    page = page[:limit]
    now = timezone.now()
    return JsonResponse(
        {
            "object": "list",
            "data": [job.as_openai(now) for job in page],
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
            "has_more": has_more,
        }
    )


@endpoint(["GET", "DELETE"], _unauthorized)
def video(request: HttpRequest, owner: str, video_id: str) -> HttpResponse:
    """GET retrieves a job (with the #flaky and #garbage misbehaviours); DELETE removes it."""
    job = _get_job(owner, video_id)
    if job is None:
        return _not_found(video_id)
    if request.method == "DELETE":
        return _delete(job)
    if job.trigger_set.flaky and job.claim_flaky_failure():
        return _error(
            503,
            "The service is temporarily unavailable (simulated #flaky).",
            type="server_error",
            code="service_unavailable",
        )
    if job.trigger_set.garbage:
        # What a misbehaving gateway in front of a provider sends: 200, but not the API's JSON.
        return HttpResponse(GARBAGE, content_type="text/html")
    return _video_response(job)


def _delete(job: Job) -> HttpResponse:
    if not job.phase().is_terminal:
        return _error(
            400,
            "Only a completed or failed video can be deleted; this one is still being generated.",
            param="video_id",
            code="video_not_finished",
        )
    video_id = job.id  # delete() clears the primary key on the instance
    assets.delete_all(job)
    job.delete()
    return JsonResponse({"id": video_id, "object": "video.deleted", "deleted": True})


@endpoint(["GET", "HEAD"], _unauthorized)
def content(request: HttpRequest, owner: str, video_id: str) -> HttpResponse:
    """The MP4, WebP thumbnail or JPEG spritesheet of a completed job, rendered on first download."""
    job = _get_job(owner, video_id)
    if job is None:
        return _not_found(video_id)
    variant = request.GET.get("variant", "video")
    if variant not in assets.VARIANTS:
        return _error(
            400,
            "Invalid value for 'variant': use video, thumbnail or spritesheet.",
            param="variant",
            code="invalid_value",
        )
    phase = job.phase()
    if phase.status != timing.COMPLETED:
        return _error(
            400,
            f"Video is not ready (status {phase.status}); download it once its status is completed.",
            param="video_id",
            code="video_not_ready",
        )
    expires_at = job.expires_at(phase)
    if expires_at and timezone.now() > expires_at:
        return _error(404, "The assets of this video have expired.", param="video_id", code="video_expired")
    try:
        name = assets.ensure(job, variant)
    except render.RenderError:
        return _error(500, "The simulated renderer crashed.", type="server_error", code="server_error")
    return FileResponse(default_storage.open(name, "rb"), content_type=assets.VARIANTS[variant].content_type)


@endpoint(["POST"], _unauthorized)
def remix(request: HttpRequest, owner: str, video_id: str) -> HttpResponse:
    """A new job from a completed one, with a new prompt and the source's model, size and length."""
    source = _get_job(owner, video_id)
    if source is None:
        return _not_found(video_id)
    try:
        data, _ = _body(request)
        prompt = _prompt(data)
    except InvalidRequest as exc:
        return _invalid(exc)
    if source.phase().status != timing.COMPLETED:
        return _error(400, "Only a completed video can be remixed.", param="video_id", code="video_not_ready")
    flags = triggers.parse(prompt)
    if flags.moderation:
        return _moderation_blocked()
    try:
        job, _ = Job.objects.start(
            owner=owner,
            protocol=OPENAI,
            prompt=prompt,
            seconds=source.seconds,
            triggers=flags,
            idempotency_key=_idempotency_key(request),
            model=source.model,
            size=source.size,
            remixed_from=source.id,
        )
    except InFlightLimit as exc:
        return _rate_limited(exc.limit)
    return _video_response(job)


@endpoint(["POST"], _unauthorized)
def create_character(request: HttpRequest, owner: str) -> HttpResponse:
    """A character from an uploaded clip (multipart `video` + `name`)."""
    name = (request.POST.get("name") or "").strip()
    if not 1 <= len(name) <= 80:
        return _error(400, "'name' must be 1 to 80 characters.", param="name", code="invalid_value")
    upload = request.FILES.get("video")
    if upload is None:
        return _error(400, "Missing required parameter: 'video'.", param="video", code="missing_required_parameter")
    if upload.size > settings.CHARACTER_CLIP_MAX_BYTES:
        return _error(400, "'video' is too large.", param="video", code="file_too_large")
    head = upload.read(64)
    if not render.looks_like_video(head):
        return _error(400, "'video' must be a non-empty MP4, MOV or WebM clip.", param="video", code="invalid_file")
    character = Character.objects.create(
        id=Character.new_id(),
        owner=owner,
        protocol=OPENAI,
        name=name,
        source=upload.name or "upload",
        clip_bytes=upload.size,
    )
    return JsonResponse(character.as_openai())


@endpoint(["GET"], _unauthorized)
def character(request: HttpRequest, owner: str, character_id: str) -> HttpResponse:
    """One of this key's characters."""
    found = Character.objects.filter(owner=owner, protocol=OPENAI, pk=character_id).first()
    if found is None:
        return _error(404, f"Character with id '{character_id}' not found.", param="character_id", code="not_found")
    return JsonResponse(found.as_openai())
