"""The `/v1/` endpoints: OpenAI's Videos API, served from the studio's own jobs.

Bearer tokens only (no session, no CSRF), rate-limited per token; every answer, errors included, in
OpenAI's shapes. Reading a video never calls a provider: status and progress are the studio's own.
"""

from __future__ import annotations

import functools
import logging

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from generations.gateway import characters, params, tokens, videos, wire
from generations.gateway.wire import ApiError
from sora_studio import files

log = logging.getLogger(__name__)


def endpoint(*methods: str):
    """An API view: the method checked, the bearer token authenticated and counted, errors in OpenAI's shape.

    The token is `request.token`; its creator is the only owner the view deals with (a session, even a
    staff one, counts for nothing here)."""

    def decorate(view):
        @csrf_exempt
        @login_not_required
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise ApiError(
                        405,
                        f"{request.method} is not allowed here; use {' or '.join(methods)}.",
                        code="method_not_allowed",
                        retry=False,
                        headers={"Allow": ", ".join(methods)},
                    )
                request.token = _authenticate(request)
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return exc.response()
            except Exception:
                # A bug of ours, not the client's: logged with its traceback here, never shown to the client.
                log.exception("API %s %s failed", request.method, request.path)
                return ApiError(500, "The studio failed to answer; try again.", type="server_error").response()

        return wrapper

    return decorate


def _authenticate(request: HttpRequest):
    header = request.headers.get("Authorization", "")
    if not header:
        raise ApiError(
            401,
            "No API token: send `Authorization: Bearer sk-studio-…` (create a token on the studio's API tokens page).",
            code="missing_api_key",
            retry=False,
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = tokens.authenticate(header)
    if token is None:
        # Never echo the token back, not even masked: error bodies end up in logs.
        raise ApiError(
            401,
            "Incorrect API token: it is unknown or was revoked.",
            code="invalid_api_key",
            retry=False,
            headers={"WWW-Authenticate": "Bearer"},
        )
    wait = tokens.throttle(token)
    if wait is not None:
        raise ApiError(
            429,
            f"Too many requests with this token; try again in {wait} s.",
            type="requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": str(wait)},
        )
    return token


@endpoint("GET", "POST")
def video_collection(request: HttpRequest) -> HttpResponse:
    """POST: create a video. GET: list the creator's videos, a keyset page at a time."""
    if request.method == "POST":
        ask = params.video_ask(params.read(request))
        made = videos.create(request.token, ask, idempotency_key=params.idempotency_key(request))
        return wire.video_response(made.generation)
    page = params.page(request.GET)
    rows, has_more = videos.listing(request.token.user, after=page.after, limit=page.limit, order=page.order)
    data = [wire.video(generation) for generation in rows]
    return JsonResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }
    )


@endpoint("GET", "DELETE")
def video_item(request: HttpRequest, video_id: str) -> HttpResponse:
    """GET: the video, as the studio knows it now. DELETE: remove it (here, and at the provider where possible)."""
    generation = videos.find(request.token.user, video_id)
    if request.method == "DELETE":
        videos.delete(generation)
        return JsonResponse({"id": wire.video_id(generation), "object": "video.deleted", "deleted": True})
    return wire.video_response(generation)


@endpoint("GET")
def video_content(request: HttpRequest, video_id: str) -> HttpResponse:
    """The stored MP4 or thumbnail, byte for byte what the gallery serves (404 until the video is completed)."""
    generation = videos.find(request.token.user, video_id)
    variant = params.variant(request.GET)
    if generation.status != "completed":
        raise ApiError(
            404,
            f"Video {video_id} is {wire.video(generation)['status']}: its content is there once it is completed.",
            param="video_id",
            code="video_not_ready",
            retry=False,
        )
    stored = generation.video if variant == "video" else generation.thumbnail
    if not stored:
        raise wire.not_found(variant, video_id, "variant")
    try:
        if variant == "video":
            return files.serve(request, stored, content_type="video/mp4", filename=f"{video_id}.mp4")
        return files.serve(request, stored)
    except Http404:  # the file went missing from storage
        raise wire.not_found(variant, video_id, "video_id") from None


@endpoint("POST")
def video_remix(request: HttpRequest, video_id: str) -> HttpResponse:
    """A remix of a completed video: the provider's own remix where the backend has one, else a new video."""
    generation = videos.find(request.token.user, video_id)
    prompt = params.remix_prompt(params.read(request))
    return wire.video_response(videos.remix(request.token, generation, prompt).generation)


@endpoint("POST")
def character_collection(request: HttpRequest) -> HttpResponse:
    """Make a library character from a clip and a name; it is registered on every backend that holds characters."""
    made = characters.create(request.token, params.character_ask(params.read(request)))
    return wire.character(made)


@endpoint("GET")
def character_item(request: HttpRequest, character_id: str) -> HttpResponse:
    return wire.character(characters.find(request.token.user, character_id))


@csrf_exempt
@login_not_required
def unknown(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any other path under /v1/: a 404 a client of OpenAI's API can read."""
    path = request.path if len(request.path) <= 120 else request.path[:120] + "…"
    return ApiError(404, f"Unknown request URL: {request.method} {path}.", code="unknown_url", retry=False).response()
