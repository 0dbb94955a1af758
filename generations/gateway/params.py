"""Reading what a client sent: JSON or multipart bodies (as the openai SDK sends them), checked field by field.

Every problem is an `ApiError` naming the parameter, never a 500: a wrong content type, a body that is
not a JSON object, an unknown field, a wrong type, a negative or non-numeric `seconds`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.template.defaultfilters import filesizeformat

from generations.gateway.wire import CHARACTER_PREFIX, VIDEO_PREFIX, ApiError, invalid
from generations.jobs import images
from generations.providers.models import Backend

MAX_JSON_BYTES = 1024 * 1024  # a prompt is at most 32,000 characters: a JSON body never needs more
MAX_PROMPT = 32000
MAX_IDEMPOTENCY_KEY = 255
DEFAULT_MODEL = "auto"
DEFAULT_SECONDS = 4
DEFAULT_SIZE = "720x1280"
CREATE_FIELDS = ("prompt", "model", "seconds", "size", "input_reference", "end_image", "backend", "characters")
IMAGE_PARAMS = ("input_reference", "end_image")
DATA_URL = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,(?P<data>.+)", re.DOTALL)
SIZE = re.compile(r"[1-9][0-9]{1,4}x[1-9][0-9]{1,4}")
WHOLE = re.compile(r"-?[0-9]+")
# Multipart spells nested values with brackets: `characters[][id]=char_…`, `input_reference[image_url]=…`.
BRACKETS = re.compile(r"^([a-z_]+)\[")


@dataclass(frozen=True)
class Body:
    fields: dict[str, Any]
    files: dict[str, UploadedFile] = field(default_factory=dict)

    def names(self) -> set[str]:
        return set(self.fields) | set(self.files)


def read(request: HttpRequest) -> Body:
    """The request's fields and files: a JSON object, or a multipart / urlencoded form."""
    content_type = request.content_type or ""
    if content_type == "application/json":
        return Body(_json_object(request))
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            fields = _flatten(request.POST)
            files = dict(request.FILES.items())
        except RequestDataTooBig:
            raise _too_large(request) from None
        except (MultiPartParserError, SuspiciousOperation, UnicodeDecodeError) as exc:
            raise invalid(f"The form body could not be read: {exc}", code="invalid_body") from None
        return Body(fields, files)
    if not request.META.get("CONTENT_LENGTH", "0").strip("0"):
        return Body({})  # no body at all (a remix sent without one): the fields' own checks speak
    raise ApiError(
        400,
        f"Unsupported content type {content_type!r}: send JSON (application/json) or multipart/form-data.",
        code="unsupported_content_type",
        retry=False,
    )


def _too_large(request: HttpRequest) -> ApiError:
    sent = filesizeformat(int(request.META.get("CONTENT_LENGTH") or 0))
    return ApiError(413, f"The request body is too large ({sent}).", code="request_too_large", retry=False)


def _json_object(request: HttpRequest) -> dict[str, Any]:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_JSON_BYTES:
        raise ApiError(
            413,
            f"The JSON body is too large ({filesizeformat(length)}; {filesizeformat(MAX_JSON_BYTES)} at most).",
            code="request_too_large",
            retry=False,
        )
    try:
        data = json.loads(request.body or b"{}")
    except RequestDataTooBig:
        raise _too_large(request) from None
    except (ValueError, RecursionError):
        raise invalid("The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise invalid('The request body must be a JSON object, like {"prompt": "…"}.', code="invalid_json")
    if not _storable(data):
        raise invalid(
            "Bad request: a field contains a NUL character or a lone surrogate (\\u0000, \\ud800).",
            code="invalid_value",
        )
    return data


def _storable(data) -> bool:
    """No NUL and no lone surrogate in any string (key or value): the form middleware refuses NULs, and
    neither can be stored as text (PostgreSQL refuses NUL; neither database takes a surrogate)."""
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            if "\x00" in value:
                return False
            try:
                value.encode()
            except UnicodeEncodeError:
                return False
    return True


def _flatten(form) -> dict[str, Any]:
    """Form fields as JSON would carry them: bracketed keys folded into lists and objects."""
    fields: dict[str, Any] = {}
    for key, values in form.lists():
        nested = BRACKETS.match(key)
        if nested is None:
            fields[key] = values[-1]
            continue
        name, rest = nested.group(1), key[nested.end() - 1 :]
        if name == "characters":
            fields.setdefault(name, []).extend(values)  # characters[][id]=…: the ids, in order
        else:
            inner = fields.setdefault(name, {})
            if isinstance(inner, dict):
                inner[rest.strip("[]")] = values[-1]
    return fields


# --- Creating a video ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageAsk:
    """A start image (`input_reference`) or an end image (`end_image`, the studio's extra) as the request gave
    it: its bytes (a file, or a base64 data URL), already checked, or a reference resolved for the creator when
    the video is made (`video_id`: the last frame of one of their videos; `character`: one of its stills)."""

    param: str
    content: bytes = b""
    name: str = ""
    video_id: str = ""
    character: str = ""
    still: int = 1

    def fingerprint(self) -> str:
        if self.content:
            return hashlib.sha256(self.content).hexdigest()
        return f"video:{self.video_id}" if self.video_id else f"character:{self.character}:{self.still}"


@dataclass(frozen=True)
class VideoAsk:
    """A create, checked: what `videos.create` starts. `model` may be "auto" (the routing policy picks)."""

    prompt: str
    model: str
    seconds: int
    size: str
    backend: Backend | None = None
    character_ids: tuple[str, ...] = ()
    start_image: ImageAsk | None = None
    end_image: ImageAsk | None = None

    @property
    def image_roles(self) -> tuple[str, ...]:
        return tuple(r for r, given in ((images.START, self.start_image), (images.END, self.end_image)) if given)

    def digest(self) -> str:
        """A fingerprint of the request, to tell a retried create from another one under the same key."""
        canonical = {
            "prompt": self.prompt,
            "model": self.model,
            "seconds": self.seconds,
            "size": self.size,
            "backend": self.backend.name if self.backend else None,
            "characters": list(self.character_ids),
        }
        for given in (self.start_image, self.end_image):
            if given is not None:  # absent images leave the digest as it was before images existed
                canonical[given.param] = given.fingerprint()
        return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def video_ask(body: Body) -> VideoAsk:
    _only(body, CREATE_FIELDS)
    fields = body.fields
    return VideoAsk(
        prompt=prompt(fields),
        model=_model(fields.get("model")),
        seconds=_seconds(fields.get("seconds")),
        size=_size(fields.get("size")),
        backend=_backend(fields.get("backend")),
        character_ids=_character_ids(fields.get("characters")),
        start_image=_image(body, "input_reference"),
        end_image=_image(body, "end_image"),
    )


def _image(body: Body, param: str) -> ImageAsk | None:
    """A start or end image: a multipart file (as the openai SDK sends `input_reference`), or an object
    `{"image_url": "data:image/…;base64,…"}`, `{"video_id": "video_…"}` (the last frame of one of your
    videos) or `{"character": "@handle", "still": 1}` (one of its stills). Checked here: its type sniffed, its
    size capped and every byte decoded; a link is not fetched and there is no Files API (file_id)."""
    upload = body.files.get(param)
    if upload is not None:
        if upload.size is not None and upload.size > images.MAX_BYTES:
            raise invalid(f"'{param}' is larger than {images.MAX_BYTES // (1024 * 1024)} MB.", param, "invalid_image")
        return ImageAsk(param, _checked(upload.read(images.MAX_BYTES + 1), param), name=(upload.name or param)[-120:])
    value = body.fields.get(param)
    if value is None or value == "":
        return None
    if isinstance(value, str) and value[:1] == "{":  # an object sent as one JSON string in a form
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if not isinstance(value, dict):
        raise invalid(
            f"'{param}' must be an image file (multipart), or an object: "
            '{"image_url": "data:image/png;base64,…"}, {"video_id": "video_…"} or {"character": "@handle"}.',
            param,
            "invalid_type",
        )
    if value.get("file_id"):
        raise invalid(
            f"This studio has no Files API: send '{param}' as a file (multipart) or as a base64 data URL.",
            param,
            "unsupported_parameter",
        )
    url = value.get("image_url")
    if isinstance(url, str) and url:
        match = DATA_URL.fullmatch(url)
        if not match:
            raise invalid(
                f"'{param}.image_url' must be a base64 data URL (data:image/png;base64,…): links are not fetched. "
                "Or send the image as a file (multipart).",
                param,
                "unsupported_value",
            )
        try:
            content = base64.b64decode(match["data"], validate=True)
        except (binascii.Error, ValueError):
            raise invalid(f"'{param}.image_url' is not valid base64.", param, "invalid_image") from None
        return ImageAsk(param, _checked(content, param), name=f"{param}.image_url")
    video_id = value.get("video_id")
    if isinstance(video_id, str) and video_id.startswith(VIDEO_PREFIX):
        return ImageAsk(param, video_id=video_id[:100])
    character = value.get("character")
    if isinstance(character, str) and character.strip().lstrip("@"):
        still = value.get("still", 1)
        if str(still) not in ("1", "2", "3"):
            raise invalid(f"'{param}.still' is 1, 2 or 3 (the character's stills).", param, "invalid_value")
        return ImageAsk(param, character=character.strip().lstrip("@").lower()[:30], still=int(still))
    raise invalid(
        f'\'{param}\' must be an image file, or {{"image_url": data URL}}, {{"video_id"}} or {{"character"}}.',
        param,
        "invalid_value",
    )


def _checked(content: bytes, param: str) -> bytes:
    try:
        images.decode(content)
    except images.ImageProblem as exc:
        raise invalid(f"'{param}': {exc}", param, "invalid_image") from None
    return content


def _only(body: Body, allowed) -> None:
    unknown = sorted(body.names() - set(allowed))
    if unknown:
        name = unknown[0][:80]
        raise invalid(
            f"Unknown parameter: '{name}'. Accepted: {', '.join(allowed)}.", param=name, code="unknown_parameter"
        )


def prompt(fields: dict[str, Any]) -> str:
    value = fields.get("prompt")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise invalid("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if not isinstance(value, str):
        raise invalid("'prompt' must be a string.", "prompt", "invalid_type")
    if len(value) > MAX_PROMPT:
        raise invalid(
            f"'prompt' is {len(value):,} characters; at most {MAX_PROMPT:,}.", "prompt", "string_above_max_length"
        )
    return value


def _model(value) -> str:
    if value is None or value == "":
        return DEFAULT_MODEL
    if not isinstance(value, str) or len(value) > 80:
        raise invalid("'model' must be the name of a model a backend offers, or 'auto'.", "model", "invalid_type")
    return value.strip()


def _seconds(value) -> int:
    if value is None or value == "":
        return DEFAULT_SECONDS
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not WHOLE.fullmatch(text):
        raise invalid(
            f"'seconds' must be a whole number of seconds written as a string, like \"8\" (got {_shown(value)}).",
            "seconds",
            "invalid_type",
        )
    seconds = int(text)
    if not 0 < seconds <= 9999:
        raise invalid(f"'seconds' must be a positive number of seconds (got {text[:20]}).", "seconds")
    return seconds


def _size(value) -> str:
    if value is None or value == "":
        return DEFAULT_SIZE
    if not isinstance(value, str) or not SIZE.fullmatch(value.strip()):
        raise invalid(f"'size' must be WIDTHxHEIGHT, like \"1280x720\" (got {_shown(value)}).", "size", "invalid_type")
    return value.strip()


def _backend(value) -> Backend | None:
    """An extra field, beyond OpenAI's: the name of the backend to pin (else the routing policy picks)."""
    if value is None or value == "":
        return None
    backend = Backend.objects.filter(name=value).first() if isinstance(value, str) and len(value) <= 80 else None
    if backend is None:
        names = ", ".join(Backend.objects.enabled().values_list("name", flat=True)) or "none is enabled"
        raise invalid(f"No backend called {_shown(value)}. Backends: {names}.", "backend")
    return backend


def _character_ids(value) -> tuple[str, ...]:
    """`characters: [{"id": "char_…"}]` as OpenAI takes it (multipart: `characters[][id]=…`)."""
    if value is None or value == "":
        return ()
    items = value if isinstance(value, list) else None
    ids = []
    for item in items or [None]:
        found = item.get("id") if isinstance(item, dict) else item
        if not isinstance(found, str) or not found.startswith(CHARACTER_PREFIX):
            raise invalid('\'characters\' must be a list like [{"id": "char_…"}].', "characters", "invalid_type")
        ids.append(found)
    if len(ids) > 10:
        raise invalid("At most 10 characters per video.", "characters")
    return tuple(dict.fromkeys(ids))


def _shown(value) -> str:
    """A value as an error message quotes it: short, and never a whole nested structure."""
    if isinstance(value, str):
        text = repr(value)
    elif value is None or isinstance(value, bool | int | float):
        text = json.dumps(value)
    else:
        text = "a list" if isinstance(value, list) else "an object"
    return text if len(text) <= 40 else text[:40] + "…"


def idempotency_key(request: HttpRequest) -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise invalid(f"Idempotency-Key is at most {MAX_IDEMPOTENCY_KEY} characters.", code="invalid_idempotency_key")
    return key


# --- Other requests ------------------------------------------------------------------------------


def remix_prompt(body: Body) -> str:
    _only(body, ("prompt",))
    return prompt(body.fields)


@dataclass(frozen=True)
class CharacterAsk:
    name: str
    video: UploadedFile
    handle: str = ""


def character_ask(body: Body) -> CharacterAsk:
    """`name` (1–80 characters) and a `video` clip file; `handle` (an extra) chooses the @handle."""
    _only(body, ("name", "video", "handle"))
    name = body.fields.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid("Missing required parameter: 'name'.", "name", "missing_required_parameter")
    if len(name) > 80:
        raise invalid("'name' is at most 80 characters.", "name", "string_above_max_length")
    video = body.files.get("video")
    if video is None:
        raise invalid(
            "Missing required parameter: 'video' (a 2–4 s clip, sent as a multipart file).",
            "video",
            "missing_required_parameter",
        )
    handle = body.fields.get("handle") or ""
    if not isinstance(handle, str):
        raise invalid("'handle' must be a string.", "handle", "invalid_type")
    return CharacterAsk(name.strip(), video, handle.strip().lstrip("@").lower())


@dataclass(frozen=True)
class Page:
    after: str
    limit: int
    order: str


def page(query) -> Page:
    """`after`, `limit` (1–100, default 20) and `order` (asc | desc, default desc) of a list request."""
    after = query.get("after", "")
    if after and not after.startswith(VIDEO_PREFIX):
        raise invalid("'after' is the id of a video from an earlier page (video_…).", "after")
    raw = query.get("limit", "20")
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= 100:
        raise invalid(f"'limit' must be a whole number from 1 to 100 (got {_shown(raw)}).", "limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid(f"'order' must be 'asc' or 'desc' (got {_shown(order)}).", "order")
    return Page(after, int(raw), order)


def variant(query) -> str:
    chosen = query.get("variant", "video")
    if chosen == "spritesheet":
        raise invalid("The studio keeps a video and its thumbnail; it has no spritesheet.", "variant")
    if chosen not in ("video", "thumbnail"):
        raise invalid(f"'variant' must be 'video' or 'thumbnail' (got {_shown(chosen)}).", "variant")
    return chosen
